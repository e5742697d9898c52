-- Opens a portal session unless its tenant has `cap` live ones already (expired ones are
-- pruned just before): checked in the step that writes, so racing exchanges cannot pass
-- it. KEYS[1] the session's bearer lookup entry, KEYS[2] the tenant's session hash.
-- ARGV[1] the cap, ARGV[2] the identity, ARGV[3] its lifetime (ms), ARGV[4] the session
-- id, ARGV[5] its entry. Returns 1, or 0 at the cap (nothing written).
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
return 1
