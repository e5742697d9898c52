-- A run of the fair-share queue that asked to be run again (arq's Retry; store/lua/_fair.lua
-- above this): its slot frees; its payload, with the try count raised, waits in the
-- retrying set until its due time (the workers' scheduler queues it then, with a new
-- tag: store/lua/promote.lua), or is queued again now at the end of its tenant's stream.
-- Unless the job ended meanwhile (canceled). The in-progress marker goes either way.
-- KEYS[1] arq's in-progress marker, KEYS[2] the queue, KEYS[3] arq's job key, KEYS[4] the
-- job hash, KEYS[5] the shard's fair-share hash, KEYS[6] its parked set, KEYS[7] its
-- running set, KEYS[8] the retrying set.
-- ARGV[1] job id, ARGV[2] due time (ms), ARGV[3] new payload, ARGV[4] now (ms),
-- ARGV[5] the jobs wake-up channel, ARGV[6] the scheduler's wake-up channel, ARGV[7] the
-- run's token.
if lost_run(KEYS[1], ARGV[7]) then return 'lost' end
local _, woken = release_slot(KEYS[2], KEYS[5], KEYS[6], ARGV[1])
if redis.call('ZREM', KEYS[7], ARGV[1]) == 1 then
  local job = redis.call('HMGET', KEYS[4], JOB.tenant, JOB.priority, JOB.status)
  if job[1] then fair_left(KEYS[5], job[1]) end
  if ENDED[job[3] or ''] then
    -- Canceled since the handler asked to retry (the cancel deleted arq's job key): nothing
    -- to run again, and no key to leave behind.
    redis.call('DEL', KEYS[3])
  elseif job[1] and tonumber(ARGV[2]) <= tonumber(ARGV[4]) then
    redis.call('SET', KEYS[3], ARGV[3])
    fair_enqueue(KEYS[2], KEYS[5], job[1], job[2], {ARGV[1]})
    woken = woken + 1
  else
    redis.call('SET', KEYS[3], ARGV[3])
    redis.call('ZADD', KEYS[8], ARGV[2], ARGV[1])
    redis.call('SPUBLISH', ARGV[6], '1')
  end
end
redis.call('DEL', KEYS[1])
if woken > 0 then redis.call('SPUBLISH', ARGV[5], '1') end
return 0
