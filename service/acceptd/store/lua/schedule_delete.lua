-- Deletes a schedule: its record, its place in the due index, what it counted against its
-- tenant's bytes; the list of its jobs stays as long as they may (ARGV[2] ms).
-- KEYS[1] schedule hash, KEYS[2] the shard's schedules:due, KEYS[3] the schedule's jobs,
-- KEYS[4] the tenant's usage hash, KEYS[5] the shard's schedules:sizes. ARGV[1] schedule
-- id, ARGV[2] the jobs' retention (ms).
-- Returns 1, or 0 when it was gone already.
local size = redis.call('HGET', KEYS[4], ARGV[1])
if size then
  redis.call('HDEL', KEYS[4], ARGV[1])
  redis.call('HINCRBY', KEYS[4], USAGE.total, -tonumber(size))
end
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return redis.call('DEL', KEYS[1])
