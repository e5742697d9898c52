-- The handler of an externally completed job type finished its part: the job now waits in
-- 'awaiting_input' for POST /v1/jobs/{id}/complete or /fail with its one-time token, or
-- for its deadline. KEYS[6] awaiting-input set (deadline as score).
-- ARGV[7] the token sealed under the master key, ARGV[8] its digest, ARGV[9] request JSON, ARGV[10] deadline (ms),
-- ARGV[11] progress JSON or ''.
-- Returns 'ok', 'canceled' (a cancel was asked for meanwhile) or the status it had instead.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status ~= 'running' then return status end
if redis.call('HGET', KEYS[1], 'cancel') == '1' then
  finish('canceled')
  return 'canceled'
end
redis.call('HSET', KEYS[1], 'token', ARGV[7], 'token_digest', ARGV[8],
  'await_request', ARGV[9], 'await_deadline', ARGV[10])
if ARGV[11] ~= '' then redis.call('HSET', KEYS[1], 'progress', ARGV[11]) end
set_status('awaiting_input')
redis.call('ZADD', KEYS[6], ARGV[10], ARGV[1])
emit_event('job.awaiting_input', true)
notify('awaiting_input')
return 'ok'
