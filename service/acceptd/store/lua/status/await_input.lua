-- The handler of an externally completed job type finished its part: the job now waits in
-- 'awaiting_input' for POST /v1/jobs/{id}/complete or /fail with its one-time token, or
-- for its deadline. KEYS[6] awaiting-input set (deadline as score), KEYS[7] the tenant's
-- usage hash (the request counts against its bytes).
-- ARGV[7] the token sealed under the master key, ARGV[8] its digest, ARGV[9] request JSON, ARGV[10] deadline (ms),
-- ARGV[11] progress JSON or ''.
-- Returns 'ok', 'canceled' (a cancel was asked for meanwhile) or the status it had instead.
load_job()
if not J.status then return 'missing' end
if J.status ~= 'running' then return J.status end
if J.cancel == '1' then
  finish('canceled')
  return 'canceled'
end
count_bytes(KEYS[7], ARGV[9])
set_status('awaiting_input', JOB.token, ARGV[7], JOB.token_digest, ARGV[8],
  JOB.await_request, ARGV[9], JOB.await_deadline, ARGV[10], unpack(given({JOB.progress, ARGV[11]})))
redis.call('ZADD', KEYS[6], ARGV[10], ARGV[1])
emit_event(EVENT.awaiting_input)
notify('awaiting_input')
return 'ok'
