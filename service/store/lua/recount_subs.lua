-- Rebuilds a tenant's event -> subscribed-endpoint count, read by the job scripts to decide
-- whether an event has any receiver. Rebuilt whole (tenants have few endpoints), atomically.
-- KEYS[1] tenant's endpoint id set, KEYS[2] the counts hash. ARGV[1] endpoint key prefix.
redis.call('DEL', KEYS[2])
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local fields = redis.call('HMGET', ARGV[1] .. id, 'events', 'disabled')
  if fields[1] and fields[2] ~= '1' then
    for _, event in ipairs(cjson.decode(fields[1])) do
      redis.call('HINCRBY', KEYS[2], event, 1)
    end
  end
end
return 1
