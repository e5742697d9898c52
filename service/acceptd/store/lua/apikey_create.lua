-- Registers an API key unless its tenant holds `cap` already: checked in the step that
-- writes, so racing creates cannot pass it. KEYS[1] the tenant's key hash, KEYS[2] the key's
-- lookup entry. ARGV[1] the cap, ARGV[2] the key id, ARGV[3] its entry, ARGV[4] its
-- identity. Returns 1, or 0 at the cap (nothing written).
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('SET', KEYS[2], ARGV[4])
return 1
