-- The handler of an externally completed job type finished its part: the job now waits in
-- 'awaiting_input' for POST /v1/jobs/{id}/complete or /fail with its one-time token, or
-- for its deadline. KEYS[4] awaiting-input set (deadline as score).
-- ARGV[6] token, ARGV[7] token digest, ARGV[8] request JSON, ARGV[9] deadline (ms),
-- ARGV[10] progress JSON or ''.
-- Returns 'ok', 'canceled' (a cancel was asked for meanwhile) or the status it had instead.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status ~= 'running' then return status end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then
  finish('canceled')
  return 'canceled'
end
redis.call('HSET', KEYS[1], 'token', ARGV[6], 'token_digest', ARGV[7],
  'await_request', ARGV[8], 'await_deadline', ARGV[9])
if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'progress', ARGV[10]) end
set_status(KEYS[1], 'awaiting_input')
redis.call('ZADD', KEYS[4], ARGV[9], ARGV[1])
emit_event('job.awaiting_input', true)
notify('awaiting_input')
return 'ok'
