-- Back to 'queued': the handler asked for a retry (ARGV[7] = '0'), or the worker is shutting
-- down and hands the job back without charging an attempt (ARGV[7] = '1').
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'running' then return 0 end
set_status('queued')
notify('queued')
if ARGV[7] == '1' then redis.call('HINCRBY', KEYS[1], 'attempts', -1) end
return 1
