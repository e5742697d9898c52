-- Moves scheduled jobs that are due into arq's queue, each in the same step as its status
-- change to 'queued'. The caller read which are due; a job another worker promoted
-- meanwhile is no longer in the scheduled set and is skipped.
-- KEYS[1] scheduled set, KEYS[2] arq queue, then per job: KEYS[2i+1] job hash, KEYS[2i+2]
-- arq job key. ARGV[1] now (ms), ARGV[2] high-priority head start (ms), ARGV[3] wake-up
-- channel, then per job: ARGV[2i+2] job id, ARGV[2i+3] its change channel.
-- Scheduled jobs are never batch items (a batch takes no run_at), so no batch counts move.
local promoted = 0
for i = 1, (#KEYS - 2) / 2 do
  local job_key, arq_key = KEYS[2 * i + 1], KEYS[2 * i + 2]
  local job_id, channel = ARGV[2 * i + 2], ARGV[2 * i + 3]
  if redis.call('ZREM', KEYS[1], job_id) == 1 then
    local fields = redis.call('HMGET', job_key, 'status', 'arq', 'priority', 'run_at', 'watched')
    if fields[1] == 'scheduled' and fields[2] then
      local score = tonumber(fields[4] or ARGV[1])
      if fields[3] == 'high' then score = score - tonumber(ARGV[2]) end
      redis.call('HSET', job_key, 'status', 'queued')
      redis.call('HDEL', job_key, 'arq')
      redis.call('SET', arq_key, fields[2])
      redis.call('ZADD', KEYS[2], score, job_id)
      -- Only while a waiter marks it watched (lua/status/_prelude.lua, notify).
      if fields[5] and tonumber(fields[5]) >= tonumber(ARGV[1]) then
        redis.call('SPUBLISH', channel, 'queued')
      end
      promoted = promoted + 1
    end
  end
end
if promoted > 0 then redis.call('SPUBLISH', ARGV[3], '1') end
return promoted
