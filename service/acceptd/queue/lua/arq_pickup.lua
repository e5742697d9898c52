-- arq's pickup of one queued job, as one step: what arq's start_jobs does with WATCH, EXISTS,
-- ZSCORE, MULTI, PSETEX, EXEC and its run_job with MULTI, GET, INCR, EXPIRE, EXEC
-- (queue/leanworker.py says what is kept and why).
-- KEYS[1] arq's in-progress marker, KEYS[2] the queue, KEYS[3] arq's job key.
-- ARGV[1] job id, ARGV[2] now (ms), ARGV[3] how long the marker (the run's lease) lives (ms).
-- Returns false when the job is not due or another worker holds it; else {score, payload}
-- (payload false when arq's job key is gone).
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return false end
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[3]) then return false end
return {score, redis.call('GET', KEYS[3])}
