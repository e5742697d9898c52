-- The worker's verdict. ARGV[7] final status, ARGV[8] result JSON or '', ARGV[9] error JSON or '',
-- ARGV[10] progress JSON or ''. A job already terminal (canceled meanwhile) keeps its status.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if is_terminal(status) then return status end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[8]) end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[9]) end
if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'progress', ARGV[10]) end
finish(ARGV[7])
return 'ok'
