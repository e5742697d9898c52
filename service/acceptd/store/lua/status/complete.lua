-- Somebody outside holding the job's completion token completes or fails it.
-- KEYS[6] awaiting-input set. ARGV[7] token digest, ARGV[8] 'succeeded' | 'failed',
-- ARGV[9] result JSON or '', ARGV[10] error JSON or ''.
-- Returns {'ok'} | {'missing'} (no such job, or not this job's token) | {'used', status}.
local fields = redis.call('HMGET', KEYS[1], 'status', 'token_digest')
local status, digest = fields[1], fields[2]
if not status or not digest or digest ~= ARGV[7] then return {'missing'} end
if status ~= 'awaiting_input' then return {'used', status} end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[9]) end
if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[10]) end
redis.call('HSET', KEYS[1], 'progress', '{"fraction":1.0,"message":null}')
redis.call('ZREM', KEYS[6], ARGV[1])
finish(ARGV[8])
return {'ok'}
