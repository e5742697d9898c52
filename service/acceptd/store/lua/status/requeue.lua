-- Back to 'queued': the handler asked for a retry, or the worker is shutting down and hands
-- the job back. ARGV[7] '1' to refund the attempt (a hand-back costs none), '0' to count
-- it (a retry).
load_job(JOB.attempts)
if J.status ~= 'running' then return 0 end
if ARGV[7] == '1' then
  set_status('queued', JOB.attempts, math.max(0, tonumber(J.attempts or '1') - 1))
else
  set_status('queued')
end
notify('queued')
return 1
