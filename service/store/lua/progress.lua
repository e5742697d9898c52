-- ARGV[6] progress JSON, ARGV[7] '1' to also emit job.progress (the caller coalesces to 1/s).
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[6])
notify('progress')
if ARGV[7] == '1' then emit_event('job.progress', false) end
return 1
