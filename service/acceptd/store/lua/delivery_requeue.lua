-- Queues the next attempt of a delivery now.
--   mode 'manual': POST /v1/deliveries/{id}/retry; a finished delivery becomes pending again.
--   mode 'sweep':  only if the delivery is pending and its queue entry is gone (lost), or
--                  its inline lease lapsed (the dispatcher sending it died).
-- KEYS[1] delivery hash, KEYS[2] its attempts list (older deliveries only), KEYS[3] due set,
-- KEYS[4] next attempt's arq job key, KEYS[5] arq queue, KEYS[6] the inline lease set,
-- KEYS[7] the subject's webhook bodies hash, KEYS[8] the tenant's usage hash.
-- ARGV[1] delivery id, ARGV[2] now (ms), ARGV[3] arq payload, ARGV[4] attempt count the
-- caller read, ARGV[5] mode, ARGV[6] arq job id, ARGV[7] wake-up channel, ARGV[8] the
-- tenant's byte budget (0: none; a manual retry stores one more attempt).
-- Returns 1, 0 (nothing to do), -1 (it changed since the caller read it), -2 (manual:
-- its body expired, nothing left to send) or -3 (manual: the tenant is past its budget).
local fields = redis.call('HMGET', KEYS[1], DELIVERY.status, DELIVERY.attempt_count,
  DELIVERY.lease, DELIVERY.body_field, DELIVERY.owed)
if not fields[1] then
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[6], ARGV[1])
  return 0
end
if tonumber(fields[2] or '0') ~= tonumber(ARGV[4]) then return -1 end
if ARGV[5] == 'sweep' then
  if fields[1] ~= 'pending' then
    redis.call('ZREM', KEYS[3], ARGV[1])
    redis.call('ZREM', KEYS[6], ARGV[1])
    return 0
  end
  if redis.call('EXISTS', KEYS[4]) == 1 then
    if fields[3] and fields[3] ~= '' then
      redis.call('ZREM', KEYS[6], ARGV[1])
      redis.call('HSET', KEYS[1], DELIVERY.lease, '')
    end
    return 0
  end
else
  local budget = tonumber(ARGV[8])
  if budget > 0 and tonumber(redis.call('HGET', KEYS[8], USAGE.total) or '0') >= budget then
    return -3
  end
  -- A finished delivery is owed again: its shared body (and its subject's charge, which
  -- lives with the bodies hash) must stay until it ends.
  if fields[1] ~= 'pending' and (fields[4] or fields[5]) then
    if fields[4] and redis.call('HEXISTS', KEYS[7], fields[4]) == 0 then return -2 end
    if redis.call('HINCRBY', KEYS[7], 'p', 1) == 1 then redis.call('PERSIST', KEYS[7]) end
  end
  redis.call('HSET', KEYS[1], DELIVERY.status, 'pending')
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
end
if fields[3] and fields[3] ~= '' then redis.call('ZREM', KEYS[6], ARGV[1]) end
redis.call('HSET', KEYS[1], DELIVERY.next_attempt, ARGV[2], DELIVERY.lease, '')
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('SET', KEYS[4], ARGV[3])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[6])
redis.call('SPUBLISH', ARGV[7], '1')
return 1
