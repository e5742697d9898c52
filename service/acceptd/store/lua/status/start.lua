-- A worker takes the job. ARGV[7] max attempts.
-- Returns {'running', attempt, input, metadata, created} | {'canceled'} | {'exhausted', attempts} | {other status} | {'missing'}
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing'} end
if status ~= 'queued' and status ~= 'running' then return {status} end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then
  finish('canceled')
  return {'canceled'}
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
-- 'running' here means an earlier attempt died with its worker; that attempt counts.
if attempts >= tonumber(ARGV[7]) then return {'exhausted', attempts} end
attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
set_status('running')
redis.call('HSETNX', KEYS[1], 'started', ARGV[3])
emit_event('job.started', false)
notify('running')
local data = redis.call('HMGET', KEYS[1], 'input', 'metadata', 'created')
return {'running', attempts, data[1] or 'null', data[2] or '{}', data[3]}
