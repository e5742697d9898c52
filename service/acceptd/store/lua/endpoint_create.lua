-- Registers an endpoint unless its tenant holds its limit of them already: the count and
-- the write in one step, so concurrent creates cannot all pass one check (they did when
-- the API counted first and wrote after).
-- KEYS[1] endpoint hash, KEYS[2] the tenant's endpoint set. ARGV[1] the limit (0: none),
-- ARGV[2] endpoint id, ARGV[3...] field/value pairs (ENDPOINT's fields). Returns 1, or 0
-- having written nothing.
local limit = tonumber(ARGV[1])
if limit > 0 and redis.call('SCARD', KEYS[2]) >= limit then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('SADD', KEYS[2], ARGV[2])
return 1
