-- A stopping worker hands a run of the fair-share queue back (store/lua/_fair.lua above
-- this): out of the running set, into the queue with the tag it had, still holding its
-- slot, so the next worker runs it at once, in that slot. Unless the job ended meanwhile.
-- KEYS[1] arq's in-progress marker, KEYS[2] the queue, KEYS[3] arq's job key, KEYS[4] the
-- job hash, KEYS[5] the shard's fair-share hash, KEYS[6] its parked set, KEYS[7] its
-- running set.
-- ARGV[1] job id, ARGV[2] the jobs wake-up channel, ARGV[3] the run's token.
-- Fenced: a run whose lease lapsed and whose job another worker took since (the marker
-- holds that run's token) touches nothing.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[3] then return 'lost' end
if redis.call('ZREM', KEYS[7], ARGV[1]) == 1 then
  redis.call('ZADD', KEYS[2], slot_score(KEYS[5], ARGV[1]), ARGV[1])
  redis.call('SPUBLISH', ARGV[2], '1')
end
redis.call('DEL', KEYS[1])
return 0
