-- Files a new schedule id in its tenant's set unless the tenant holds its limit already:
-- the count and the write in one step, so concurrent creates cannot all pass one check.
-- KEYS[1] the tenant's schedules. ARGV[1] the limit (0: none), ARGV[2] the schedule id.
-- Returns 1, or 0 having written nothing.
local limit = tonumber(ARGV[1])
if limit > 0 and redis.call('SCARD', KEYS[1]) >= limit then return 0 end
redis.call('SADD', KEYS[1], ARGV[2])
return 1
