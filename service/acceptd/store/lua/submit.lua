-- Creates the job record and, in the same step, either enqueues arq's "run job X" or files
-- the job as scheduled: neither the record nor its way to a worker exists without the other.
-- KEYS[1] job hash, KEYS[2] tenant job index, KEYS[3] arq job key, KEYS[4] arq queue, or the
-- scheduled set when ARGV[7] is 'schedule', KEYS[5] the tenant's usage hash (store/usage.py),
-- KEYS[6] the shard's fair-share hash (lua/_fair.lua, above this), KEYS[7] (optional)
-- idempotency key
-- ARGV[1] job id, ARGV[2] arq payload, ARGV[3] due time (ms) when scheduling,
-- ARGV[4] idempotency value, ARGV[5] idempotency ttl (ms), ARGV[6] wake-up channel (the
-- workers' queue one, or the scheduler's when scheduling),
-- ARGV[7] the mode: 'queue' | 'schedule', ARGV[8] the tenant's job quota (0: none),
-- ARGV[9] the tenant's byte budget (0: none), ARGV[10] the bytes this job stores,
-- ARGV[11] the value of the request's claim on the idempotency key ('' without one),
-- ARGV[12] priority, ARGV[13...] job hash field/value pairs, the tenant's first
-- (store/job_record.py new_job_fields).
-- Writes nothing and returns 0 when the tenant's
-- index already holds its quota of jobs, -1 when this job would take it past its budget
-- of bytes, -2 when the request's claim on its idempotency key lapsed (a retry may hold
-- it now: creating would make the job twice).
if #KEYS == 7 and redis.call('GET', KEYS[7]) ~= ARGV[11] then return -2 end
local written = write_job(KEYS[1], KEYS[2], KEYS[5], ARGV[1], tonumber(ARGV[8]),
  tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV, 13)
if written ~= 1 then return written end
if #KEYS == 7 then
  redis.call('SET', KEYS[7], ARGV[4], 'PX', ARGV[5])
end
if ARGV[7] == 'schedule' then
  -- The arq payload waits in the record; promote.lua queues it when the job is due.
  redis.call('HSET', KEYS[1], JOB.arq, ARGV[2])
  redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
  redis.call('SPUBLISH', ARGV[6], '1')  -- workers sleep until the earliest due time
  return 1
end
-- The fields open with the tenant.
queue_job(KEYS[3], ARGV[2], KEYS[4], KEYS[6], ARGV[14], ARGV[12], ARGV[1], ARGV[6])
return 1
