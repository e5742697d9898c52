-- Rebuilds a tenant's event -> subscribed-endpoint count, read by the job scripts to decide
-- whether an event has any receiver. Rebuilt whole (tenants have few endpoints), atomically,
-- under a new version (`~v`): each shard's copy is then written from what this returns
-- (lua/subs_copy.lua), and a copy never goes back to an older version.
-- The tenant is noted with the new version among those whose copies are pending, in the
-- same step: a role that dies before the copies are written leaves it to the sweeper.
-- KEYS[1] tenant's endpoint id set, KEYS[2] the counts hash, KEYS[3] the pending copies
-- hash, KEYS[4...] the hash of each endpoint in the set; ARGV[1] the tenant, ARGV[2...]
-- the endpoints' ids, in the same order.
-- Returns 0 without writing when the set changed since the caller read it (it reads again);
-- else the new hash as a flat list of field/value pairs, `~v` first.
if redis.call('SCARD', KEYS[1]) ~= #ARGV - 1 then return 0 end
for i = 2, #ARGV do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then return 0 end
end
local version = tonumber(redis.call('HGET', KEYS[2], '~v') or '0') + 1
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], '~v', version)
redis.call('HSET', KEYS[3], ARGV[1], version)
for i = 4, #KEYS do
  local fields = redis.call('HMGET', KEYS[i], ENDPOINT.events, ENDPOINT.disabled)
  if fields[1] and fields[2] ~= '1' then
    for _, event in ipairs(cjson.decode(fields[1])) do
      redis.call('HINCRBY', KEYS[2], event, 1)
    end
  end
end
return redis.call('HGETALL', KEYS[2])
