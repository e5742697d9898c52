-- One tick of a recurring schedule (store/schedules.py), or a run asked for now: in one
-- step the tick is claimed (SCHEDULE.next_tick moves past it) and its job written and
-- queued, so each tick makes one job whatever the number of workers that saw it due, and a
-- worker that dies makes either both or neither. lua/_fair.lua and lua/_new_job.lua above.
-- KEYS[1] schedule hash, KEYS[2] the shard's schedules:due, KEYS[3] the schedule's jobs,
-- KEYS[4] job hash, KEYS[5] tenant job index, KEYS[6] arq job key, KEYS[7] job queue,
-- KEYS[8] tenant usage hash, KEYS[9] fair-share hash, KEYS[10] the hash of the schedule's
-- last job as the caller read it (KEYS[1] when it had none).
-- ARGV[1] the kind: 'tick' | 'trigger', ARGV[2] the tick (ms) the caller read as due ('' to only put
-- the index back in line with the record), ARGV[3] the next tick after it ('' none),
-- ARGV[4] now (ms), ARGV[5] job id, ARGV[6] arq payload, ARGV[7] the workers' wake-up
-- channel, ARGV[8] job quota, ARGV[9] byte budget, ARGV[10] the job's bytes, ARGV[11]
-- priority, ARGV[12] the last job id the caller read ('' none), ARGV[13] schedule id,
-- ARGV[14...] the job's field/value pairs, 'tenant' first.
-- Returns 'ok', 'skipped' (overlap: the last job still runs), 'quota' or 'bytes' (the
-- tenant's limits refused the job; a tick moves on all the same), 'stale' (this tick is
-- not due: another took it, or a change moved it), 'paused' or 'missing'.
local id = ARGV[13]
local s = redis.call('HMGET', KEYS[1], SCHEDULE.created, SCHEDULE.next_tick, SCHEDULE.paused,
  SCHEDULE.overlap, SCHEDULE.last_job)
if not s[1] then
  redis.call('ZREM', KEYS[2], id)
  return 'missing'
end
if ARGV[1] == 'tick' then
  if s[3] == '1' then
    redis.call('ZREM', KEYS[2], id)
    return 'paused'
  end
  if s[2] ~= ARGV[2] then
    -- The claim moved the index entry a lease ahead: back to the record's tick.
    if s[2] and s[2] ~= '' then
      redis.call('ZADD', KEYS[2], s[2], id)
    else
      redis.call('ZREM', KEYS[2], id)  -- no tick left (the expression never runs again)
    end
    return 'stale'
  end
  redis.call('HSET', KEYS[1], SCHEDULE.next_tick, ARGV[3])
  if ARGV[3] == '' then
    redis.call('ZREM', KEYS[2], id)
  else
    redis.call('ZADD', KEYS[2], ARGV[3], id)
  end
  if s[4] == 'skip' and s[5] then
    local running = true  -- a last job other than the one the caller read: made just now
    if s[5] == ARGV[12] then
      local status = redis.call('HGET', KEYS[10], JOB.status)
      running = status and not ENDED[status]  -- false once it ended, or expired
    end
    if running then
      redis.call('HINCRBY', KEYS[1], SCHEDULE.skipped, 1)
      return 'skipped'
    end
  end
end
local written = write_job(KEYS[4], KEYS[5], KEYS[8], ARGV[5], tonumber(ARGV[8]),
  tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV, 14)
if written == 0 then return 'quota' end
if written == -1 then return 'bytes' end
queue_job(KEYS[6], ARGV[6], KEYS[7], KEYS[9], ARGV[15], ARGV[11], ARGV[5], ARGV[7])
redis.call('ZADD', KEYS[3], 0, ARGV[5])
redis.call('HSET', KEYS[1], SCHEDULE.last_run, ARGV[4], SCHEDULE.last_job, ARGV[5])
return 'ok'
