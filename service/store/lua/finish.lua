-- The worker's verdict. ARGV[6] final status, ARGV[7] result JSON or '', ARGV[8] error JSON or '',
-- ARGV[9] progress JSON or ''. A job already terminal (canceled meanwhile) keeps its status.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if is_terminal(status) then return status end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[8]) end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'progress', ARGV[9]) end
finish(ARGV[6])
return 'ok'
