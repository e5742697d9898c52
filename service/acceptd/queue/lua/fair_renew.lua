-- Renews the leases of runs of the fair-share queue (store/lua/_fair.lua above this): each
-- run's marker and its running-set entry live one more lease, by the server's clock, if
-- the marker still holds the run's token. A run whose lease lapsed and whose job another
-- worker took since is told so (0), and renews nothing.
-- KEYS[1] arq's in-progress marker, KEYS[2] the shard's running set.
-- ARGV[1] job id, ARGV[2] the run's token, ARGV[3] the lease (ms).
-- Returns 1 when renewed, 0 when the run lost its lease.
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], 'XX', server_ms() + tonumber(ARGV[3]), ARGV[1])
return 1
