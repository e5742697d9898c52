-- The API's changes to an endpoint's record (an update, a secret's rotation), made only
-- while the endpoint is the tenant's: a change that raced the endpoint's deletion must not
-- bring back a hash without a tenant, which no read would take for an endpoint and no
-- expiry would ever remove (see endpoint_health.lua for the dispatcher's writes).
-- KEYS[1] endpoint hash. ARGV[1] tenant, ARGV[2] enabled: '1' when the change enables it
-- (why it was disabled goes), ARGV[3...] its fields: field, value pairs, set.
-- Returns 1, or 0 if the endpoint is gone (or another tenant's).
if redis.call('HGET', KEYS[1], ENDPOINT.tenant) ~= ARGV[1] then return 0 end
if ARGV[2] == '1' then
  redis.call('HDEL', KEYS[1], ENDPOINT.disabled_reason, ENDPOINT.disabled_at,
    ENDPOINT.failing_since)
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
return 1
