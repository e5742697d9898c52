-- A run of the fair-share queue ended for good (store/lua/_fair.lua above this): arq's job
-- key, the marker and the running entry (or a queue entry) go, and the job's slot frees in
-- the same step, so a crash can neither leak a slot nor strand the jobs parked behind it.
-- KEYS[1] arq's in-progress marker, KEYS[2] the queue, KEYS[3] arq's job key, KEYS[4] the
-- job hash, KEYS[5] the shard's fair-share hash, KEYS[6] its parked set, KEYS[7] its
-- running set.
-- ARGV[1] job id, ARGV[2] the jobs wake-up channel (told when parked jobs went back),
-- ARGV[3] the run's token, ARGV[4] '1': only if the job's record has ended (sent with the
-- record's outcome, in its round trip: queue/leanworker.py end_run), else 'unfinished'
-- and nothing changes: an outcome that was not written leaves the run to end as before.
if lost_run(KEYS[1], ARGV[3]) then return 'lost' end
if ARGV[4] == '1' and not ENDED[redis.call('HGET', KEYS[4], JOB.status)] then
  return 'unfinished'
end
redis.call('DEL', KEYS[3], KEYS[1])
local removed = redis.call('ZREM', KEYS[7], ARGV[1]) == 1
-- A stopping worker's hand-back may have queued the run again before its outcome landed
-- (they leave in different batches): the job has ended, and its arq job is gone, so that
-- entry goes too (left, a pickup would find it expired, or park a finished job).
removed = redis.call('ZREM', KEYS[2], ARGV[1]) == 1 or removed
local tenant, woken = release_slot(KEYS[2], KEYS[5], KEYS[6], ARGV[1])
if removed then
  tenant = tenant or redis.call('HGET', KEYS[4], JOB.tenant)
  if tenant then fair_left(KEYS[5], tenant) end
end
if woken > 0 then redis.call('SPUBLISH', ARGV[2], '1') end
return 0
