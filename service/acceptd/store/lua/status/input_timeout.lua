-- The deadline of a job awaiting input passed: it fails. KEYS[6] awaiting-input set.
-- ARGV[7] error JSON. Returns 1 if the job timed out here, 0 if it had moved on.
load_job(JOB.await_deadline)
if J.status ~= 'awaiting_input' then
  redis.call('ZREM', KEYS[6], ARGV[1])
  return 0
end
if tonumber(J.await_deadline) > tonumber(ARGV[3]) then return 0 end
redis.call('ZREM', KEYS[6], ARGV[1])
finish('failed', JOB.error, ARGV[7])
return 1
