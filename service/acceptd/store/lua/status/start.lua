-- A worker takes the job. ARGV[7] max attempts.
-- KEYS[6] arq's in-progress marker and KEYS[7] arq's job key, ARGV[8] the run's token: a
-- start sent with the job's pickup, in its round trip (queue/leanworker.py), happens only
-- if that pickup took the job: the marker holds the token, the job key is there, and the
-- job is the tenant's the announcement named. The token is kept on the job: the same
-- start sent again (its connection dropped after it ran) replies as the first did,
-- without counting another attempt. A start sent after its pickup passes '' and the job
-- hash for both (nothing to check).
-- Returns {'running', attempt, input, metadata, created} | {'canceled'} | {'exhausted', attempts} | {other status} | {'missing'} | {'not-taken'}
local with_pickup = ARGV[8] ~= ''
if with_pickup and (redis.call('GET', KEYS[6]) ~= ARGV[8]
    or redis.call('EXISTS', KEYS[7]) == 0) then
  return {'not-taken'}
end
load_job(JOB.attempts, JOB.started, JOB.input, JOB.metadata, JOB.created, JOB.tenant, JOB.run)
if with_pickup and J.status and J.tenant ~= ARGV[2] then return {'not-taken'} end
if with_pickup and J.status == 'running' and J.run == ARGV[8] then
  return {'running', tonumber(J.attempts), J.input or 'null', J.metadata or '{}', J.created}
end
if not J.status then return {'missing'} end
if J.status ~= 'queued' and J.status ~= 'running' then return {J.status} end
if J.cancel == '1' then
  finish('canceled')
  return {'canceled'}
end
local attempts = tonumber(J.attempts or '0')
-- 'running' here means an earlier attempt died with its worker; that attempt counts.
if attempts >= tonumber(ARGV[7]) then return {'exhausted', attempts} end
attempts = attempts + 1
local changes = {JOB.attempts, attempts}
if not J.started then
  changes[#changes + 1], changes[#changes + 2] = JOB.started, ARGV[3]
end
if with_pickup then
  changes[#changes + 1], changes[#changes + 2] = JOB.run, ARGV[8]
end
set_status('running', unpack(changes))
emit_event(EVENT.started)
notify('running')
return {'running', attempts, J.input or 'null', J.metadata or '{}', J.created}
