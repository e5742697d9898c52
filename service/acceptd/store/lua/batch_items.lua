-- Writes one chunk of a batch's items: each an ordinary job record, queued for a worker in
-- the same step. The API runs every chunk and the batch hash in one MULTI/EXEC, so a batch
-- exists with all of its items or not at all.
-- Writes nothing unless the batch hash exists: lua/batch_open.lua, first in the
-- transaction, writes it only if the batch fits the tenant's quotas.
-- A part on another shard than the batch's home is written held (ARGV[9] '1'): out of
-- the queue until the batch is known to exist (lua/batch_part_release.lua).
-- KEYS[1] tenant job index, KEYS[2] the part's job index, KEYS[3] arq queue, KEYS[4] the
-- part's hash (the batch's, on its home), KEYS[5] the tenant's usage hash, then per item:
-- KEYS[2i+4] job hash, KEYS[2i+5] arq job key.
-- ARGV[1] tenant, ARGV[2] created (ms), ARGV[3] queue score, ARGV[4] batch id,
-- ARGV[5] callback_url or '', ARGV[6] priority, ARGV[7] the submit's traceparent or '',
-- ARGV[8] the items as one JSON array of
-- [job id, type, input JSON, metadata JSON or '', arq payload, ordering key or '', bytes]
-- (one argument, not six per item: packing 50,000 arguments costs the API more than cjson
-- costs Redis), ARGV[9] '1' to hold the items out of the queue.
if redis.call('EXISTS', KEYS[4]) == 0 then return 0 end
local common = {'tenant', ARGV[1], 'status', 'queued', 'attempts', 0, 'created', ARGV[2],
  'batch', ARGV[4]}
if ARGV[5] ~= '' then
  table.insert(common, 'callback_url')
  table.insert(common, ARGV[5])
end
if ARGV[6] ~= 'normal' then
  table.insert(common, 'priority')
  table.insert(common, ARGV[6])
end
if ARGV[7] ~= '' then
  table.insert(common, 'tp')
  table.insert(common, ARGV[7])
end
local items = cjson.decode(ARGV[8])
-- The index and queue entries go in one variadic ZADD each, not one call per item.
local queued, indexed, sizes = {}, {}, {}
for i, item in ipairs(items) do
  local job_id = item[1]
  local job_key = KEYS[2 * i + 4]
  redis.call('HSET', job_key, 'type', item[2], 'input', item[3], unpack(common))
  if item[4] ~= '' then redis.call('HSET', job_key, 'metadata', item[4]) end
  if item[6] ~= '' then redis.call('HSET', job_key, 'okey', item[6]) end
  redis.call('SET', KEYS[2 * i + 5], item[5])
  queued[2 * i - 1], queued[2 * i] = ARGV[3], job_id
  indexed[2 * i - 1], indexed[2 * i] = 0, job_id
  sizes[2 * i - 1], sizes[2 * i] = job_id, item[7]
end
if ARGV[9] ~= '1' then redis.call('ZADD', KEYS[3], unpack(queued)) end
redis.call('ZADD', KEYS[1], unpack(indexed))
redis.call('ZADD', KEYS[2], unpack(indexed))
-- Each item's bytes under its own field (batch_open.lua counted them in the total).
redis.call('HSET', KEYS[5], unpack(sizes))
return #items
