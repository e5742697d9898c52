-- Runs of the job queue whose lease lapsed (their worker died or lost Redis): back into the
-- queue with the tag they had, still holding their slot (lua/_fair.lua above this), for the
-- next worker to run again in it. The caller read which lapsed; a run renewed since (its
-- marker lives on) stays, rescored.
-- KEYS[1] the shard's running set, KEYS[2] the queue, KEYS[3] the fair-share hash, then per
-- run KEYS[i+3] its arq in-progress marker.
-- ARGV[1] now (ms), ARGV[2] the jobs wake-up channel, then per run ARGV[i+2] its job id.
-- Returns how many went back.
local back = 0
for i = 1, #KEYS - 3 do
  local job_id = ARGV[i + 2]
  local lapses = redis.call('ZSCORE', KEYS[1], job_id)
  if lapses and tonumber(lapses) <= tonumber(ARGV[1]) then
    local left = redis.call('PTTL', KEYS[i + 3])
    if left > 0 then
      redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + left, job_id)
    else
      redis.call('ZREM', KEYS[1], job_id)
      redis.call('ZADD', KEYS[2], slot_score(KEYS[3], job_id), job_id)
      back = back + 1
    end
  end
end
if back > 0 then redis.call('SPUBLISH', ARGV[2], '1') end
return back
