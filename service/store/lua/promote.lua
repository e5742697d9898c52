-- Moves scheduled jobs that are due into arq's queue, each in the same step as its status
-- change to 'queued'. KEYS[1] scheduled set, KEYS[2] arq queue. ARGV[1] now (ms), ARGV[2] at
-- most this many, ARGV[3] job key prefix, ARGV[4] arq job key prefix, ARGV[5] high-priority
-- head start (ms), ARGV[6] wake-up channel. (The keys built here mirror keys.job/arq_job.)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local promoted = 0
for _, job_id in ipairs(due) do
  redis.call('ZREM', KEYS[1], job_id)
  local job_key = ARGV[3] .. job_id
  local fields = redis.call('HMGET', job_key, 'status', 'arq', 'priority', 'run_at')
  if fields[1] == 'scheduled' and fields[2] then
    local score = tonumber(fields[4] or ARGV[1])
    if fields[3] == 'high' then score = score - tonumber(ARGV[5]) end
    set_status(job_key, 'queued')
    redis.call('HDEL', job_key, 'arq')
    redis.call('SET', ARGV[4] .. job_id, fields[2])
    redis.call('ZADD', KEYS[2], score, job_id)
    redis.call('PUBLISH', job_key .. ':changes', 'queued')
    promoted = promoted + 1
  end
end
if promoted > 0 then redis.call('PUBLISH', ARGV[6], '1') end
return promoted
