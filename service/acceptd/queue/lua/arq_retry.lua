-- A job run that asked to be run again later (arq's Retry): its payload, with the try count
-- it carries raised, and its new due time, unless the job left the queue meanwhile
-- (canceled). The in-progress marker goes either way.
-- KEYS[1] arq's in-progress marker, KEYS[2] the queue, KEYS[3] arq's job key.
-- ARGV[1] job id, ARGV[2] new score (ms), ARGV[3] new payload.
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('SET', KEYS[3], ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
end
redis.call('DEL', KEYS[1])
return 0
