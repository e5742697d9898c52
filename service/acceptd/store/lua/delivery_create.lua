-- Persists a delivery and queues its first attempt in one step; a replayed fan-out is a no-op.
-- ARGV[3] is when arq may run that attempt: now, or later when the dispatcher sends it inline
-- first and the queue entry is only a lease that re-sends it if the dispatcher dies.
-- KEYS[1] delivery hash, KEYS[2] job's delivery list, KEYS[3] due set, KEYS[4] arq job key,
-- KEYS[5] arq queue. ARGV[1] delivery id, ARGV[2] arq payload, ARGV[3] due (ms),
-- ARGV[4] retention (ms), ARGV[5] arq job id, ARGV[6] wake-up channel, ARGV[7...] field/value pairs
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('SET', KEYS[4], ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[5])
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], '1') end
return 1
