-- A live waiter is about to read the job: status scripts SPUBLISH its changes until the
-- mark's time (lua/status/_prelude.lua, notify). Never creates a record that expired, and
-- never shortens another waiter's mark. KEYS[1] job hash. ARGV[1] until when (ms).
local fields = redis.call('HMGET', KEYS[1], JOB.status, JOB.watched)
if fields[1] and tonumber(fields[2] or '0') < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], JOB.watched, ARGV[1])
end
return 0
