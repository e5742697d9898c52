-- Moves jobs whose time came into arq's queue (lua/_fair.lua above this gives each its
-- tag): from the scheduled set, a job in the same step as its status change to 'queued';
-- from the retrying set, a run that waited out its retry delay (queue/lua/fair_retry.lua;
-- arq's job key holds its payload), as it is. The caller read which are due; a job another
-- worker promoted meanwhile is no longer in the set and is skipped, and so is one that
-- ended meanwhile (canceled).
-- KEYS[1] scheduled or retrying set, KEYS[2] arq queue, KEYS[3] the shard's fair-share hash, then per
-- job: KEYS[2i+2] job hash, KEYS[2i+3] arq job key. ARGV[1] now (ms), ARGV[2] wake-up
-- channel, then per job: ARGV[2i+1] job id, ARGV[2i+2] its change channel.
-- Scheduled jobs are never batch items (a batch takes no run_at), so no batch counts move.
local promoted = 0
for i = 1, (#KEYS - 3) / 2 do
  local job_key, arq_key = KEYS[2 * i + 2], KEYS[2 * i + 3]
  local job_id, channel = ARGV[2 * i + 1], ARGV[2 * i + 2]
  if redis.call('ZREM', KEYS[1], job_id) == 1 then
    local fields = redis.call('HMGET', job_key, JOB.status, JOB.arq, JOB.priority, JOB.watched,
      JOB.tenant)
    if fields[1] == 'scheduled' and fields[2] then
      redis.call('HSET', job_key, JOB.status, 'queued')
      redis.call('HDEL', job_key, JOB.arq)
      redis.call('SET', arq_key, fields[2])
      fair_enqueue(KEYS[2], KEYS[3], fields[5], fields[3], {job_id})
      -- Only while a waiter marks it watched (lua/status/_prelude.lua, notify).
      if fields[4] and tonumber(fields[4]) >= tonumber(ARGV[1]) then
        redis.call('SPUBLISH', channel, 'queued')
      end
      promoted = promoted + 1
    elseif (fields[1] == 'queued' or fields[1] == 'running') and fields[5]
        and redis.call('EXISTS', arq_key) == 1 then
      fair_enqueue(KEYS[2], KEYS[3], fields[5], fields[3], {job_id})
      promoted = promoted + 1
    elseif fields[1] ~= 'scheduled' then
      redis.call('DEL', arq_key)  -- ended meanwhile: its run is not owed
    end
  end
end
if promoted > 0 then redis.call('SPUBLISH', ARGV[2], '1') end
return promoted
