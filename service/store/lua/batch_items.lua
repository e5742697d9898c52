-- Writes one chunk of a batch's items: each an ordinary job record, queued for a worker in
-- the same step. The API runs every chunk and the batch hash in one MULTI/EXEC, so a batch
-- exists with all of its items or not at all.
-- KEYS[1] tenant job index, KEYS[2] batch job index, KEYS[3] arq queue.
-- ARGV[1] job key prefix, ARGV[2] arq job key prefix, ARGV[3] tenant, ARGV[4] created (ms),
-- ARGV[5] queue score, ARGV[6] batch id, ARGV[7] callback_url or '', ARGV[8] priority,
-- then 5 values per item: job id, type, input JSON, metadata JSON or '', arq payload.
-- (The keys built here mirror keys.job and keys.arq_job.)
local common = {'tenant', ARGV[3], 'status', 'queued', 'attempts', 0, 'created', ARGV[4],
  'batch', ARGV[6]}
if ARGV[7] ~= '' then
  table.insert(common, 'callback_url')
  table.insert(common, ARGV[7])
end
if ARGV[8] ~= 'normal' then
  table.insert(common, 'priority')
  table.insert(common, ARGV[8])
end
for i = 9, #ARGV, 5 do
  local job_id = ARGV[i]
  local job_key = ARGV[1] .. job_id
  redis.call('HSET', job_key, 'type', ARGV[i + 1], 'input', ARGV[i + 2], unpack(common))
  if ARGV[i + 3] ~= '' then redis.call('HSET', job_key, 'metadata', ARGV[i + 3]) end
  redis.call('SET', ARGV[2] .. job_id, ARGV[i + 4])
  redis.call('ZADD', KEYS[3], ARGV[5], job_id)
  redis.call('ZADD', KEYS[1], 0, job_id)
  redis.call('ZADD', KEYS[2], 0, job_id)
end
return (#ARGV - 8) / 5
