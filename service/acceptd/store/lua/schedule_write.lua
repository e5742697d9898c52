-- Writes a schedule's own fields (what its owner set, with SCHEDULE.next_tick when that
-- moves and SCHEDULE.created on a create; never what ticks write: SCHEDULE.last_run,
-- SCHEDULE.last_job, SCHEDULE.skipped) and puts it in the shard's due index at its next
-- tick (or takes it out, paused), in one step: the index never names a tick the record
-- does not. What its own fields weigh is counted against the tenant's bytes
-- (store/usage.py), as a submit's job is: a write that would take the tenant past its
-- budget writes nothing.
-- KEYS[1] schedule hash, KEYS[2] the shard's schedules:due, KEYS[3] the tenant's usage hash,
-- KEYS[4] the shard's schedules:sizes.
-- ARGV[1] the write: 'create' | 'update' (an update of a schedule deleted meanwhile writes nothing),
-- ARGV[2] schedule id, ARGV[3] its next tick (ms; '' out of the index; 'keep' as it is),
-- ARGV[4] the scheduler's wake-up channel, ARGV[5] the bytes its own fields weigh once
-- written, ARGV[6] the tenant's byte budget on this shard (0: none), ARGV[7...]
-- field/value pairs (SCHEDULE's fields, its own first). Returns 1, 0 (deleted meanwhile)
-- or -1 (budget), having written nothing but for 1.
if ARGV[1] == 'update' and redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local size, budget = tonumber(ARGV[5]), tonumber(ARGV[6])
local grows = size - tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
if grows > 0 and budget > 0
    and tonumber(redis.call('HGET', KEYS[3], USAGE.total) or '0') + grows > budget then
  return -1
end
redis.call('HINCRBY', KEYS[3], USAGE.total, grows)
redis.call('HSET', KEYS[3], ARGV[2], size)
redis.call('HSET', KEYS[4], ARGV[2], size)
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[2], ARGV[2])
elseif ARGV[3] ~= 'keep' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
  redis.call('SPUBLISH', ARGV[4], '1')  -- workers sleep until the earliest tick they read
end
return 1
