-- The dispatcher's writes to an endpoint's health, only while the endpoint exists: an
-- attempt that was in flight while the endpoint was deleted must not bring back a hash
-- without a tenant (which the sweeper would then retry forever).
-- KEYS[1] endpoint hash. ARGV[1] the kind: 'failure' | 'disable', ARGV[2] now (ms), ARGV[3] reason.
-- Returns: 'failure' -> when the failing streak began (ms), or 0 if the endpoint is gone;
--          'disable' -> 1 (disabled now), 2 (it was disabled already), 0 (it is gone).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == 'failure' then
  redis.call('HSETNX', KEYS[1], ENDPOINT.failing_since, ARGV[2])
  return tonumber(redis.call('HGET', KEYS[1], ENDPOINT.failing_since))
end
if redis.call('HGET', KEYS[1], ENDPOINT.disabled) == '1' then return 2 end
redis.call('HSET', KEYS[1], ENDPOINT.disabled, '1', ENDPOINT.disabled_reason, ARGV[3],
  ENDPOINT.disabled_at, ARGV[2], ENDPOINT.updated, ARGV[2])
return 1
