-- Writes a schedule's fields and puts it in the shard's due index at its next tick (or
-- takes it out, paused), in one step: the index never names a tick the record does not.
-- KEYS[1] schedule hash, KEYS[2] the shard's schedules:due. ARGV[1] 'create' | 'update'
-- (an update of a schedule deleted meanwhile writes nothing), ARGV[2] schedule id,
-- ARGV[3] its next tick (ms; '' out of the index; 'keep' as it is), ARGV[4] the scheduler's wake-up
-- channel, ARGV[5...] field/value pairs. Returns 1, or 0 having written nothing.
if ARGV[1] == 'update' and redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[2], ARGV[2])
elseif ARGV[3] ~= 'keep' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
  redis.call('SPUBLISH', ARGV[4], '1')  -- workers sleep until the earliest tick they read
end
return 1
