-- The worker's verdict. ARGV[7] final status, ARGV[8] result JSON or '', ARGV[9] error JSON or '',
-- ARGV[10] progress JSON or ''. A job already terminal (canceled meanwhile) keeps its status.
-- KEYS[6] the tenant's usage hash: the result and error count against its bytes.
load_job()
if not J.status then return 'missing' end
if is_terminal(J.status) then return J.status end
count_bytes(KEYS[6], ARGV[8], ARGV[9])
finish(ARGV[7], unpack(given({JOB.result, ARGV[8], JOB.error, ARGV[9], JOB.progress, ARGV[10]})))
return 'ok'
