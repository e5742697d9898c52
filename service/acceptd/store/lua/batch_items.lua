-- Writes one chunk of a batch's items: each an ordinary job record, queued for a worker in
-- the same step. The API runs every chunk and the batch hash in one MULTI/EXEC, so a batch
-- exists with all of its items or not at all.
-- Writes nothing unless the batch hash exists: lua/batch_open.lua, first in the
-- transaction, writes it only if the batch fits the tenant's quotas.
-- A part on another shard than the batch's home is written held (ARGV[5] '1'): out of
-- the queue until the batch is known to exist (lua/batch_part_release.lua).
-- KEYS[1] tenant job index, KEYS[2] the part's job index, KEYS[3] arq queue, KEYS[4] the
-- part's hash (the batch's, on its home), KEYS[5] the tenant's usage hash, KEYS[6] the
-- shard's fair-share hash (lua/_fair.lua, above this), then per item: KEYS[2i+5] job hash,
-- KEYS[2i+6] arq job key.
-- ARGV[1] tenant, ARGV[2] priority (the fair-share lane), ARGV[3] the job fields every item
-- shares, as one JSON array of name, value, ... (store/job_record.py shared_fields; every
-- value a string, as a number would lose digits in Lua),
-- ARGV[4] the items as one JSON array of {id, arq (its arq payload), bytes, fields (its
-- own: name, value, ...)} (one argument, not several per item: packing 50,000 arguments
-- costs the API more than cjson costs Redis), ARGV[5] '1' to hold the items out of the queue.
-- No field is named here: Python's job layout (store/layouts.py) wrote them all.
if redis.call('EXISTS', KEYS[4]) == 0 then return 0 end
local shared = cjson.decode(ARGV[3])
local items = cjson.decode(ARGV[4])
-- The index and queue entries go in one variadic ZADD each, not one call per item.
local queued, indexed, sizes = {}, {}, {}
for i, item in ipairs(items) do
  local job_id = item.id
  local job_key = KEYS[2 * i + 5]
  local fields = {unpack(shared)}
  for _, part in ipairs(item.fields) do fields[#fields + 1] = part end
  redis.call('HSET', job_key, unpack(fields))
  redis.call('SET', KEYS[2 * i + 6], item.arq)
  queued[i] = job_id
  indexed[2 * i - 1], indexed[2 * i] = 0, job_id
  sizes[2 * i - 1], sizes[2 * i] = job_id, item.bytes
end
if ARGV[5] ~= '1' then fair_enqueue(KEYS[3], KEYS[6], ARGV[1], ARGV[2], queued) end
redis.call('ZADD', KEYS[1], unpack(indexed))
redis.call('ZADD', KEYS[2], unpack(indexed))
-- Each item's bytes under its own field (batch_open.lua counted them in the total).
redis.call('HSET', KEYS[5], unpack(sizes))
return #items
