-- Stores a portal link unless its tenant holds `cap` unused, unexpired ones already: checked
-- in the step that writes, so racing creates cannot pass it. KEYS[1] the link, KEYS[2] the
-- tenant's sorted set of unused links by expiry. ARGV[1] now (ms), ARGV[2] the cap,
-- ARGV[3] the link's value, ARGV[4] its lifetime (ms), ARGV[5] its digest, ARGV[6] its
-- expiry (ms). Returns 1, or 0 at the cap (nothing written).
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[4], 'GT')
return 1
