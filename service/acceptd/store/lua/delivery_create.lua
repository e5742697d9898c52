-- Persists a delivery and queues its first attempt in one step; a replayed fan-out is a no-op.
-- ARGV[3] is when arq may run that attempt: now, or later when the dispatcher sends it inline
-- first and the queue entry is only a lease that re-sends it if the dispatcher dies.
-- KEYS[1] delivery hash, KEYS[2] job's delivery list, KEYS[3] due set, KEYS[4] arq job key,
-- KEYS[5] arq queue, KEYS[6] tenant's delivery index, KEYS[7] endpoint's delivery index,
-- KEYS[8] its key's order queue (ordered endpoints), KEYS[9] the set of order queues.
-- ARGV[1] delivery id, ARGV[2] arq payload, ARGV[3] due (ms), ARGV[4] retention (ms),
-- ARGV[5] arq job id, ARGV[6] wake-up channel, ARGV[7] '1' if to an endpoint,
-- ARGV[8] the oldest id the indexes keep (older ones expired), ARGV[9] its place in the
-- order queue, or '' when unordered, ARGV[10...] field/value pairs
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 10))
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if ARGV[9] ~= '' then
  -- Held: its first attempt is queued when it heads its key's queue (store/ordering.py).
  redis.call('ZADD', KEYS[8], 0, ARGV[9])
  redis.call('SADD', KEYS[9], KEYS[8])
else
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
  redis.call('SET', KEYS[4], ARGV[2])
  redis.call('ZADD', KEYS[5], ARGV[3], ARGV[5])
end
-- Indexes by id (all scores 0: ids sort by time); entries past retention are cut here.
redis.call('ZADD', KEYS[6], 0, ARGV[1])
redis.call('ZREMRANGEBYLEX', KEYS[6], '-', '(' .. ARGV[8])
if ARGV[7] == '1' then
  redis.call('ZADD', KEYS[7], 0, ARGV[1])
  redis.call('ZREMRANGEBYLEX', KEYS[7], '-', '(' .. ARGV[8])
end
if ARGV[6] ~= '' and ARGV[9] == '' then redis.call('PUBLISH', ARGV[6], '1') end
return 1
