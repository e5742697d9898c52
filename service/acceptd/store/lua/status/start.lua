-- A worker takes the job. ARGV[7] max attempts.
-- Returns {'running', attempt, input, metadata, created} | {'canceled'} | {'exhausted', attempts} | {other status} | {'missing'}
load_job(JOB.attempts, JOB.started, JOB.input, JOB.metadata, JOB.created)
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
if J.started then
  set_status('running', JOB.attempts, attempts)
else
  set_status('running', JOB.attempts, attempts, JOB.started, ARGV[3])
end
emit_event(EVENT.started)
notify('running')
return {'running', attempts, J.input or 'null', J.metadata or '{}', J.created}
