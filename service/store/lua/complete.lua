-- Somebody outside holding the job's completion token completes or fails it.
-- KEYS[4] awaiting-input set. ARGV[6] token digest, ARGV[7] 'succeeded' | 'failed',
-- ARGV[8] result JSON or '', ARGV[9] error JSON or ''.
-- Returns {'ok'} | {'missing'} (no such job, or not this job's token) | {'used', status}.
local fields = redis.call('HMGET', KEYS[1], 'status', 'token_digest')
local status, digest = fields[1], fields[2]
if not status or not digest or digest ~= ARGV[6] then return {'missing'} end
if status ~= 'awaiting_input' then return {'used', status} end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[8]) end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[9]) end
redis.call('HSET', KEYS[1], 'progress', '{"fraction":1.0,"message":null}')
redis.call('ZREM', KEYS[4], ARGV[1])
finish(ARGV[7])
return {'ok'}
