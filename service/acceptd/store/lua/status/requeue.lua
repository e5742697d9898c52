-- Back to 'queued': the handler asked for a retry (ARGV[7] = '0'), or the worker is shutting
-- down and hands the job back without charging an attempt (ARGV[7] = '1').
load_job('attempts')
if J.status ~= 'running' then return 0 end
if ARGV[7] == '1' then
  set_status('queued', JOB.attempts, math.max(0, tonumber(J.attempts or '1') - 1))
else
  set_status('queued')
end
notify('queued')
return 1
