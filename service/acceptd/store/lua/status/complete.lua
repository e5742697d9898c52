-- Somebody outside holding the job's completion token completes or fails it.
-- KEYS[6] awaiting-input set, KEYS[7] the tenant's usage hash (the result counts). ARGV[7] token digest, ARGV[8] the outcome: 'succeeded' | 'failed',
-- ARGV[9] result JSON or '', ARGV[10] error JSON or ''.
-- Returns {'ok'} | {'missing'} (no such job, or not this job's token) | {'used', status}.
load_job(JOB.token_digest)
if not J.status or not J.token_digest or J.token_digest ~= ARGV[7] then return {'missing'} end
if J.status ~= 'awaiting_input' then return {'used', J.status} end
redis.call('ZREM', KEYS[6], ARGV[1])
count_bytes(KEYS[7], ARGV[9], ARGV[10])
finish(ARGV[8], JOB.progress, '{"fraction":1.0,"message":null}',
  unpack(given({JOB.result, ARGV[9], JOB.error, ARGV[10]})))
return {'ok'}
