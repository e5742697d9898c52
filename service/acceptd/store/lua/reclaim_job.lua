-- Gives a job whose worker is gone back to the queue at once: its lease lapsed (the worker
-- died or lost Redis), or its own worker hands it back after losing Redis mid-job.
-- arq's in-progress marker of the dead run is dropped, so any worker may take the job now
-- rather than when the marker expires (the job's timeout later); the queue entry and arq's
-- job key are made sure of (they may have been deleted by arq on a failed write).
-- KEYS[1] job leases, KEYS[2] job hash, KEYS[3] arq job key, KEYS[4] arq in-progress key,
-- KEYS[5] arq queue. ARGV[1] job id, ARGV[2] now (ms), ARGV[3] arq payload, ARGV[4] grace
-- (ms) before it may be reclaimed again, ARGV[5] wake-up channel, ARGV[6] '1' to hand it
-- back before its lease lapsed (its own worker knows it no longer runs it).
-- Returns 1 when the job was queued again, 0 when it needed nothing.
if ARGV[6] ~= '1' then
  local lease = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if not lease or tonumber(lease) > tonumber(ARGV[2]) then return 0 end
end
local status = redis.call('HGET', KEYS[2], 'status')
if status ~= 'running' and status ~= 'queued' then
  -- Settled (or parked awaiting input) before its worker went: nothing is owed.
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('DEL', KEYS[4])
redis.call('SET', KEYS[3], ARGV[3], 'NX')
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
-- Whoever takes it holds a lease of its own; until then, do not reclaim it again.
redis.call('ZADD', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[4]), ARGV[1])
redis.call('PUBLISH', ARGV[5], '1')
return 1
