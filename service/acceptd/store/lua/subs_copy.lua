-- Writes one shard's copy of a tenant's subscription counts (lua/recount_subs.lua), unless
-- it holds that version or a newer one already: two rebuilds racing to copy leave the newer.
-- KEYS[1] the shard's copy; ARGV[1...] the counts as field/value pairs, `~v` first.
local have = tonumber(redis.call('HGET', KEYS[1], '~v') or '0')
if have >= tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
