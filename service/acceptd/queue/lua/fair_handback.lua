-- A stopping worker hands a run of the fair-share queue back (store/lua/_fair.lua above
-- this): out of the running set, into the queue with the tag it had, still holding its
-- slot, so the next worker runs it at once, in that slot. Unless the job ended meanwhile.
-- KEYS[1] arq's in-progress marker, KEYS[2] the queue, KEYS[3] arq's job key, KEYS[4] the
-- job hash, KEYS[5] the shard's fair-share hash, KEYS[6] its parked set, KEYS[7] its
-- running set.
-- ARGV[1] job id, ARGV[2] the jobs wake-up channel, ARGV[3] the run's token.
if lost_run(KEYS[1], ARGV[3]) then return 'lost' end
if back_in_slot(KEYS[2], KEYS[7], KEYS[5], ARGV[1]) then redis.call('SPUBLISH', ARGV[2], '1') end
redis.call('DEL', KEYS[1])
return 0
