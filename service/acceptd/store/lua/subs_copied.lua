-- Every shard holds a tenant's subscription counts at `version` (or newer): it leaves the
-- pending copies hash, unless a newer rebuild is pending since.
-- KEYS[1] the pending copies hash; ARGV[1] the tenant, ARGV[2] the version copied.
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
