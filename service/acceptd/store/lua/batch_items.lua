-- Writes one chunk of a batch's items: each an ordinary job record, queued for a worker in
-- the same step. The API runs every chunk and the batch hash in one MULTI/EXEC, so a batch
-- exists with all of its items or not at all.
-- Writes nothing unless the batch hash exists: lua/batch_open.lua, first in the
-- transaction, writes it only if the batch fits the tenant's quotas.
-- A part on another shard than the batch's home is written held (ARGV[9] '1'): out of
-- the queue until the batch is known to exist (lua/batch_part_release.lua).
-- KEYS[1] tenant job index, KEYS[2] the part's job index, KEYS[3] arq queue, KEYS[4] the
-- part's hash (the batch's, on its home), KEYS[5] the tenant's usage hash, KEYS[6] the
-- shard's fair-share hash (lua/_fair.lua, above this), then per item: KEYS[2i+5] job hash,
-- KEYS[2i+6] arq job key.
-- ARGV[1] tenant, ARGV[2] created (ms), ARGV[3] batch id,
-- ARGV[4] callback_url or '', ARGV[5] priority, ARGV[6] the submit's traceparent or '',
-- ARGV[7] the items as one JSON array of
-- [job id, type, input JSON, metadata JSON or '', arq payload, ordering key or '',
-- concurrency key or '', its limit (0 without), bytes, channels JSON or '']
-- (one argument, not six per item: packing 50,000 arguments costs the API more than cjson
-- costs Redis), ARGV[8] '1' to hold the items out of the queue.
if redis.call('EXISTS', KEYS[4]) == 0 then return 0 end
local common = {'tenant', ARGV[1], 'status', 'queued', 'attempts', 0, 'created', ARGV[2],
  'batch', ARGV[3]}
if ARGV[4] ~= '' then
  table.insert(common, 'callback_url')
  table.insert(common, ARGV[4])
end
if ARGV[5] ~= 'normal' then
  table.insert(common, 'priority')
  table.insert(common, ARGV[5])
end
if ARGV[6] ~= '' then
  table.insert(common, 'tp')
  table.insert(common, ARGV[6])
end
local items = cjson.decode(ARGV[7])
-- The index and queue entries go in one variadic ZADD each, not one call per item.
local queued, indexed, sizes = {}, {}, {}
for i, item in ipairs(items) do
  local job_id = item[1]
  local job_key = KEYS[2 * i + 5]
  redis.call('HSET', job_key, 'type', item[2], 'input', item[3], unpack(common))
  if item[4] ~= '' then redis.call('HSET', job_key, 'metadata', item[4]) end
  if item[6] ~= '' then redis.call('HSET', job_key, 'okey', item[6]) end
  if item[7] ~= '' then redis.call('HSET', job_key, 'ckey', item[7], 'climit', item[8]) end
  if item[10] and item[10] ~= '' then redis.call('HSET', job_key, 'chan', item[10]) end
  redis.call('SET', KEYS[2 * i + 6], item[5])
  queued[i] = job_id
  indexed[2 * i - 1], indexed[2 * i] = 0, job_id
  sizes[2 * i - 1], sizes[2 * i] = job_id, item[9]
end
if ARGV[8] ~= '1' then fair_enqueue(KEYS[3], KEYS[6], ARGV[1], ARGV[5], queued) end
redis.call('ZADD', KEYS[1], unpack(indexed))
redis.call('ZADD', KEYS[2], unpack(indexed))
-- Each item's bytes under its own field (batch_open.lua counted them in the total).
redis.call('HSET', KEYS[5], unpack(sizes))
return #items
