-- Writing a new job (store/jobs.py JobStore.prepare made its fields): prepended, after
-- lua/_fair.lua, to the scripts that create jobs (submit.lua, schedule_tick.lua).

-- Writes the record and files it in its tenant's index, counted against the tenant's job
-- quota (`quota` entries in the index, 0: none) and byte budget (`budget`, 0: none, of
-- which the job takes `size`). The fields are argv[from...], the tenant's first. Returns 1, or
-- 0 (quota) or -1 (budget) having written nothing.
local function write_job(job, index, usage, job_id, quota, budget, size, argv, from)
  if quota > 0 and redis.call('ZCARD', index) >= quota then return 0 end
  -- Counted first and given back on refusal: one command on the way that succeeds.
  local stored = redis.call('HINCRBY', usage, USAGE.total, size)
  if budget > 0 and stored > budget then
    redis.call('HINCRBY', usage, USAGE.total, -size)
    return -1
  end
  redis.call('HSET', usage, job_id, size)
  redis.call('HSET', job, unpack(argv, from))
  redis.call('ZADD', index, 0, job_id)
  return 1
end

-- Queues the job written just now for a worker: arq's "run job X", its fair-share tag, and
-- a wake-up for the workers sleeping on the shard. No expiry on arq's job key: a job
-- waiting out a long outage of every worker must still run. A job alone in the queue is
-- what a worker's read of the queue would take first: the wake-up names it, and the worker
-- takes it without that read (queue/wakeable.py); its payload follows, so that the worker
-- can start the job's record with its pickup. Otherwise the wake-up says only '1'.
local function queue_job(arq_key, payload, queue, fair, tenant, priority, job_id, wake)
  redis.call('SET', arq_key, payload)
  fair_enqueue(queue, fair, tenant, priority, {job_id})
  if redis.call('ZCARD', queue) == 1 then
    redis.call('SPUBLISH', wake, job_id .. ' ' .. payload)
  else
    redis.call('SPUBLISH', wake, '1')
  end
end
