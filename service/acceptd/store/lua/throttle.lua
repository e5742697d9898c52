-- Per-endpoint send limit shared by every dispatcher: a sliding window of send times, so no
-- window of ARGV[2] ms ever holds more than ARGV[1] sends (a token bucket would let twice
-- the rate through across a window's edge). Uses the server's clock.
-- KEYS[1] the window (sorted set of sends), KEYS[2] who waits (sorted set, score = since).
-- ARGV[1] limit, ARGV[2] window (ms), ARGV[3] the delivery asking.
-- Returns {0, waited ms} when it may send now, {ms until a slot frees, deliveries waiting}.
local limit, window, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, member .. ':' .. now)
  redis.call('PEXPIRE', KEYS[1], window)
  local since = redis.call('ZSCORE', KEYS[2], member)
  redis.call('ZREM', KEYS[2], member)
  return {0, since and (now - tonumber(since)) or 0}
end
redis.call('ZADD', KEYS[2], 'NX', now, member)
-- Who waits is kept an hour at most: a delivery given up meanwhile falls out.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 3600000)
redis.call('PEXPIRE', KEYS[2], 3600000)
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {tonumber(oldest[2]) + window - now + 1, redis.call('ZCARD', KEYS[2])}
