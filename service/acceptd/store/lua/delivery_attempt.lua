-- Records attempt N and what follows it. Ignored (returns 0) unless the delivery is pending and
-- N is its next attempt: a duplicate run of the same attempt must not record twice.
-- KEYS[1] delivery hash, KEYS[2] its attempts list, KEYS[3] due set, KEYS[4] next attempt's arq
-- job key, KEYS[5] arq queue. ARGV[1] delivery id, ARGV[2] N, ARGV[3] attempt JSON,
-- ARGV[4] new status, ARGV[5] next due (ms, when pending), ARGV[6] next arq payload,
-- ARGV[7] retention (ms), ARGV[8] next arq job id. KEYS[6] this attempt's arq job key,
-- ARGV[9] this attempt's arq job id: dropped, as the attempt is done (when it was sent inline,
-- that entry was only the lease that would have re-sent it after a crash).
local fields = redis.call('HMGET', KEYS[1], 'status', 'attempt_count')
if fields[1] ~= 'pending' or tonumber(fields[2] or '0') ~= tonumber(ARGV[2]) - 1 then return 0 end
redis.call('DEL', KEYS[6])
redis.call('ZREM', KEYS[5], ARGV[9])
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'attempt_count', ARGV[2], 'status', ARGV[4])
if ARGV[4] == 'pending' then
  redis.call('HSET', KEYS[1], 'next_attempt', ARGV[5])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
  redis.call('SET', KEYS[4], ARGV[6])
  redis.call('ZADD', KEYS[5], ARGV[5], ARGV[8])
else
  redis.call('HDEL', KEYS[1], 'next_attempt')
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  redis.call('PEXPIRE', KEYS[2], ARGV[7])
end
return 1
