-- Prepended to every script that changes a job's status.
-- Job scripts share this argument layout:
--   KEYS[1] job hash, KEYS[2] events stream, KEYS[3] tenant's event-subscription counts
--   ARGV[1] job id, ARGV[2] tenant, ARGV[3] now (ms), ARGV[4] event id, ARGV[5] retention (ms)

-- The outbox: an event is written in the same atomic step as the state change it reports,
-- so a crash can never lose one. It is written only when somebody will receive it: an
-- endpoint subscribed to it, or, for terminal events, the job's own callback_url.
local function emit_event(event, terminal)
  local wanted = tonumber(redis.call('HGET', KEYS[3], event) or '0') > 0
  if not wanted and terminal then
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

local function finish(status)
  redis.call('HSET', KEYS[1], 'status', status, 'finished', ARGV[3])
  redis.call('HDEL', KEYS[1], 'cancel')
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  emit_event('job.' .. status, true)
  notify(status)
end
