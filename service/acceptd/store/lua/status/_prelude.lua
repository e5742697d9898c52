-- Prepended to every script in this folder: each changes the status of one job.
-- Every key a script touches is passed in (store/keys.py builds them all); they share:
--   KEYS[1] job hash, KEYS[2] events stream, KEYS[3] tenant's event-subscription counts,
--   KEYS[4] the job's batch hash and KEYS[5] its batch's job index ('' and '' for a job in
--   no batch); script-specific keys follow from KEYS[6].
--   ARGV[1] job id, ARGV[2] tenant, ARGV[3] now (ms), ARGV[4] event id, ARGV[5] retention (ms),
--   ARGV[6] the job's change channel (live waiters); script-specific arguments follow.
-- store/scripts.py writes `local TERMINAL = {...}` above this, from core/statuses.py.

-- The caller names the batch keys (it knows the job's batch from the queue entry or the
-- record). A job whose batch keys were not passed would let the batch's counts drift, so
-- that is refused before anything is written.
local BATCH = false
do
  local batch_id = redis.call('HGET', KEYS[1], 'batch')
  if batch_id then
    if KEYS[4] == '' or string.sub(KEYS[4], -(#batch_id + 1)) ~= ':' .. batch_id then
      return redis.error_reply('ERR job ' .. ARGV[1] .. ' is in batch ' .. batch_id ..
        ': its batch keys must be passed')
    end
    BATCH = KEYS[4]
  end
end

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

-- Tells live waiters (GET ?wait=, the SSE stream) that the job changed.
-- A PUBLISH nobody listens to costs next to nothing.
local function notify(what)
  redis.call('PUBLISH', ARGV[6], what)
end

local function is_terminal(status)
  return TERMINAL[status] == true
end

-- Every status change goes through here, so a batch's counts per status stay exact.
local function set_status(status)
  local old = redis.call('HGET', KEYS[1], 'status')
  redis.call('HSET', KEYS[1], 'status', status)
  if BATCH and old ~= status then
    redis.call('HINCRBY', BATCH, 'n:' .. old, -1)
    redis.call('HINCRBY', BATCH, 'n:' .. status, 1)
  end
end

-- The last item of a batch reached a terminal status: the batch is complete, and its
-- batch.completed event goes to the batch's callback_url and subscribed endpoints.
local function complete_batch()
  local fields = redis.call('HMGET', BATCH, 'id', 'callback_url')
  redis.call('HSET', BATCH, 'completed', ARGV[3])
  redis.call('PEXPIRE', BATCH, ARGV[5])
  redis.call('PEXPIRE', KEYS[5], ARGV[5])
  local wanted = tonumber(redis.call('HGET', KEYS[3], 'batch.completed') or '0') > 0
  if wanted or (fields[2] and fields[2] ~= '') then
    -- The batch completes once, so its event id can derive from the batch id.
    redis.call('XADD', KEYS[2], '*', 'msg', 'msg_' .. string.sub(fields[1], 5),
      'event', 'batch.completed', 'batch', fields[1], 'tenant', ARGV[2], 'at', ARGV[3])
  end
end

local function finish(status)
  set_status(status)
  redis.call('HSET', KEYS[1], 'finished', ARGV[3])
  redis.call('HDEL', KEYS[1], 'cancel', 'token')
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  emit_event('job.' .. status, true)
  notify(status)
  if BATCH then
    local done = redis.call('HINCRBY', BATCH, 'terminal', 1)
    if done == tonumber(redis.call('HGET', BATCH, 'total')) then complete_batch() end
  end
end
