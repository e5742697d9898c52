-- ARGV[7] progress JSON, ARGV[8] '1' to also emit job.progress (the caller coalesces to 1/s).
load_job()
if J.status ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], JOB.progress, ARGV[7])
notify('progress')
if ARGV[8] == '1' then emit_event(EVENT.progress) end
return 1
