-- Creates the job record and enqueues arq's "run job X" in one step: neither exists without the other.
-- KEYS[1] job hash, KEYS[2] tenant job index, KEYS[3] arq job key, KEYS[4] arq queue,
-- KEYS[5] (optional) idempotency key
-- ARGV[1] job id, ARGV[2] arq payload, ARGV[3] queue score (ms), ARGV[4] idempotency value,
-- ARGV[5] idempotency ttl (ms), ARGV[6] wake-up channel, ARGV[7...] job hash field/value pairs
if #KEYS == 5 then
  redis.call('SET', KEYS[5], ARGV[4], 'PX', ARGV[5])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('ZADD', KEYS[2], 0, ARGV[1])
-- No expiry on arq's job key: a job waiting out a long outage of every worker must still run.
redis.call('SET', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
redis.call('PUBLISH', ARGV[6], '1')
return 1
