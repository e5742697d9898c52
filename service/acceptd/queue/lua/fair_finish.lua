-- A run of the fair-share queue ended for good (store/lua/_fair.lua above this): arq's job
-- key, the marker and the running entry (or the queue or parked entry the job has again)
-- go, and the job's slot frees in the same step, so a crash can neither leak a slot nor
-- strand the jobs parked behind it.
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
local tenant, woken
if redis.call('ZREM', KEYS[7], ARGV[1]) == 1 then
  tenant, woken = release_slot(KEYS[2], KEYS[5], KEYS[6], ARGV[1])
  tenant = tenant or redis.call('HGET', KEYS[4], JOB.tenant)
  if tenant then fair_left(KEYS[5], tenant) end
else
  -- Not running: a hand-back or the lease sweep may have queued it again before this
  -- landed (they leave in different batches), and a pickup may have parked it since. Its
  -- entry goes as a cancel's does (status/cancel.lua): counted out, its slot freed, or,
  -- if it waited without one (woken from the parked set), its turn passed on.
  local job = redis.call('HMGET', KEYS[4], JOB.tenant, JOB.concurrency_key,
    JOB.concurrency_limit, JOB.parked)
  if job[1] then
    woken = forget_entry(KEYS[2], KEYS[5], KEYS[6], ARGV[1], job[1], job[2] or '',
      job[3] or '0', job[4])
  else
    tenant, woken = release_slot(KEYS[2], KEYS[5], KEYS[6], ARGV[1])
  end
end
if woken > 0 then redis.call('SPUBLISH', ARGV[2], '1') end
return 0
