-- Prepended to every script that changes a job's status.
-- Job scripts share this argument layout:
--   KEYS[1] job hash, KEYS[2] events stream, KEYS[3] tenant's event-subscription counts
--   ARGV[1] job id, ARGV[2] tenant, ARGV[3] now (ms), ARGV[4] event id, ARGV[5] retention (ms)

-- The outbox: an event is written in the same atomic step as the state change it reports,
-- so a crash can never lose one. It is written only when somebody will receive it: an
-- endpoint subscribed to it, or, for the events a callback gets (terminal ones and
-- job.awaiting_input), the job's own callback_url.
local function emit_event(event, to_callback)
  local wanted = tonumber(redis.call('HGET', KEYS[3], event) or '0') > 0
  if not wanted and to_callback then
    local callback = redis.call('HGET', KEYS[1], 'callback_url')
    wanted = callback ~= false and callback ~= ''
  end
  if wanted then
    redis.call('XADD', KEYS[2], '*', 'msg', ARGV[4], 'event', event,
      'job', ARGV[1], 'tenant', ARGV[2], 'at', ARGV[3])
  end
end

-- Tells live waiters (GET ?wait=, the SSE stream) that the job changed; the channel is
-- keys.job_changes in Python. A PUBLISH nobody listens to costs next to nothing.
local function notify(what)
  redis.call('PUBLISH', KEYS[1] .. ':changes', what)
end

local function is_terminal(status)
  return status == 'succeeded' or status == 'failed' or status == 'canceled'
end

-- The hash of the batch the job belongs to, or false. Mirrors keys.batch in Python.
local function batch_of(job_key)
  local batch_id = redis.call('HGET', job_key, 'batch')
  if not batch_id then return false end
  return string.match(job_key, '^(.-)job:') .. 'batch:' .. batch_id
end

-- Every status change goes through here, so a batch's counts per status stay exact.
local function set_status(job_key, status)
  local old = redis.call('HGET', job_key, 'status')
  redis.call('HSET', job_key, 'status', status)
  local batch = batch_of(job_key)
  if batch and old ~= status then
    redis.call('HINCRBY', batch, 'n:' .. old, -1)
    redis.call('HINCRBY', batch, 'n:' .. status, 1)
  end
  return batch
end

-- The last item of a batch reached a terminal status: the batch is complete, and its
-- batch.completed event goes to the batch's callback_url and subscribed endpoints.
local function complete_batch(batch)
  local fields = redis.call('HMGET', batch, 'id', 'callback_url')
  redis.call('HSET', batch, 'completed', ARGV[3])
  redis.call('PEXPIRE', batch, ARGV[5])
  redis.call('PEXPIRE', batch .. ':jobs', ARGV[5])
  local wanted = tonumber(redis.call('HGET', KEYS[3], 'batch.completed') or '0') > 0
  if wanted or (fields[2] and fields[2] ~= '') then
    -- The batch completes once, so its event id can derive from the batch id.
    redis.call('XADD', KEYS[2], '*', 'msg', 'msg_' .. string.sub(fields[1], 5),
      'event', 'batch.completed', 'batch', fields[1], 'tenant', ARGV[2], 'at', ARGV[3])
  end
end

local function finish(status)
  local batch = set_status(KEYS[1], status)
  redis.call('HSET', KEYS[1], 'finished', ARGV[3])
  redis.call('HDEL', KEYS[1], 'cancel', 'token')
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  emit_event('job.' .. status, true)
  notify(status)
  if batch then
    local done = redis.call('HINCRBY', batch, 'terminal', 1)
    if done == tonumber(redis.call('HGET', batch, 'total')) then complete_batch(batch) end
  end
end
