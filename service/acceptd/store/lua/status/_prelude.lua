-- Prepended to every script in this folder: each changes the status of one job.
-- Every key a script touches is passed in (store/keys.py builds them all); they share:
--   KEYS[1] job hash, KEYS[2] events stream, KEYS[3] tenant's event-subscription counts,
--   KEYS[4] the job's batch part (store/keys.py batch_part: the hash of the batch's items on
--   the job's shard) and KEYS[5] that part's job index (for a job in no batch,
--   the job hash twice: a cluster refuses a script whose keys, '' included, span slots);
--   script-specific keys follow from KEYS[6].
--   ARGV[1] job id, ARGV[2] tenant, ARGV[3] now (ms), ARGV[4] event id, ARGV[5] retention (ms),
--   ARGV[6] the job's change channel (live waiters); script-specific arguments follow.
-- store/scripts.py writes `local TERMINAL = {...}` above this, from core/statuses.py.
--
-- Redis is the one part that does not scale out, so every command here is counted
-- (bench/commands.py): the job's fields are read once, in one HMGET, and each step below
-- writes only what changes.

local J = {}       -- the job's fields, read by load_job; J.status is false if there is no job
local BATCH_KEY = false

-- Reads the fields the shared steps need, plus the script's own (`...`: JOB.<name>, the
-- job layout of store/layouts.py), in one HMGET, into J by the layout's names (J.status,
-- J.concurrency_key). The
-- caller names the batch keys (it knows the job's batch from the queue entry or the
-- record): a job whose batch keys were not passed would let the batch's counts drift, so
-- that is refused before anything is written.
local JOB_NAME = {}  -- a job hash's field -> its name in the layout
for name, field in pairs(JOB) do JOB_NAME[field] = name end

local function load_job(...)
  local fields = {JOB.status, JOB.batch, JOB.callback_url, JOB.cancel, JOB.token, JOB.watched,
    ...}
  local values = redis.call('HMGET', KEYS[1], unpack(fields))
  for i, field in ipairs(fields) do J[JOB_NAME[field]] = values[i] end
  local batch_id = J.batch
  if batch_id then
    if KEYS[4] == KEYS[1] or string.sub(KEYS[4], -(#batch_id + 1)) ~= ':' .. batch_id then
      error({err = 'ERR job ' .. ARGV[1] .. ' is in batch ' .. batch_id ..
        ': its batch keys must be passed'})
    end
    BATCH_KEY = KEYS[4]
  end
end

-- The outbox: an event is written in the same atomic step as the state change it reports,
-- so a crash can never lose one. It is written only when somebody will receive it: the
-- job's own callback_url (for the events a callback gets, TO_CALLBACK; then the
-- subscriptions need not be read) or a subscribed endpoint. EVENT and TO_CALLBACK come
-- from core/events.py (store/scripts.py writes them above this, and RECORD_IN_EVENT_MAX).
-- `with_record`: the event a step writes after all its changes to the job may carry the
-- job as they left it (`record`: its fields as HGETALL gives them, a JSON array), for its
-- callback: the dispatcher then sends that without reading the job first, one round trip
-- sooner (dispatcher/fanout.py). Not a large job's: it is read, as it always was.
local function emit_event(event, with_record)
  local to_callback = TO_CALLBACK[event] and J.callback_url and J.callback_url ~= ''
  local wanted = to_callback
  if not wanted then
    wanted = tonumber(redis.call('HGET', KEYS[3], event) or '0') > 0
  end
  if not wanted then return end
  local entry = {'msg', ARGV[4], 'event', event, 'job', ARGV[1], 'tenant', ARGV[2],
    'at', ARGV[3]}
  if with_record and to_callback then
    local record = redis.call('HGETALL', KEYS[1])
    local size = 0
    for i = 1, #record do size = size + #record[i] end
    -- The raw size bounds the encoding's work, the encoded one what the event holds
    -- (escapes can double a text).
    local encoded = size <= RECORD_IN_EVENT_MAX and cjson.encode(record)
    if encoded and #encoded <= RECORD_IN_EVENT_MAX then
      entry[#entry + 1] = 'record'
      entry[#entry + 1] = encoded
    end
  end
  redis.call('XADD', KEYS[2], '*', unpack(entry))
end

-- Tells live waiters (GET ?wait=, the SSE stream) that the job changed, when there are
-- any: a waiter marks the job `watched` until some time (store/changes.py) before it
-- reads it, so no change between its read and its wait goes unannounced.
local function notify(what)
  if J.watched and tonumber(J.watched) >= tonumber(ARGV[3]) then
    redis.call('SPUBLISH', ARGV[6], what)
  end
end

local function is_terminal(status)
  return TERMINAL[status] == true
end

-- Every status change goes through here, so a batch's counts per status stay exact. Other
-- fields that change with the status are passed as `...` (name, value, ...): one HSET.
local function set_status(status, ...)
  local old = J.status
  redis.call('HSET', KEYS[1], JOB.status, status, ...)
  J.status = status
  if BATCH_KEY and old ~= status then
    redis.call('HINCRBY', BATCH_KEY, BATCH.count .. old, -1)
    redis.call('HINCRBY', BATCH_KEY, BATCH.count .. status, 1)
  end
end

-- The batch is complete: its batch.completed event goes to the batch's callback_url and
-- subscribed endpoints. BATCH_KEY is the batch's home hash here.
local function complete_batch()
  local fields = redis.call('HMGET', BATCH_KEY, BATCH.id, BATCH.callback_url)
  redis.call('HSET', BATCH_KEY, BATCH.completed, ARGV[3])
  redis.call('PEXPIRE', BATCH_KEY, ARGV[5])
  redis.call('PEXPIRE', KEYS[5], ARGV[5])
  local wanted = fields[2] and fields[2] ~= ''
  if not wanted then
    wanted = tonumber(redis.call('HGET', KEYS[3], EVENT.batch_completed) or '0') > 0
  end
  if wanted then
    -- The batch completes once, so its event id can derive from the batch id.
    redis.call('XADD', KEYS[2], '*', 'msg', 'msg_' .. string.sub(fields[1], 5),
      'event', EVENT.batch_completed, 'batch', fields[1], 'tenant', ARGV[2], 'at', ARGV[3])
  end
end

-- The last item of this shard's part of a batch reached a terminal status. A batch on one
-- shard is then complete. A batch over many shards completes when its home has heard from
-- every part: this one tells it through its shard's events stream (an internal event the
-- dispatcher hands to lua/status/batch_part_done.lua on the home shard). Every part
-- expires with the batch, not before: its counts are the batch's until then.
local function complete_part()
  local part = redis.call('HMGET', BATCH_KEY, BATCH.parts, BATCH.part, BATCH.id)
  if not part[2] and tonumber(part[1] or '1') == 1 then return complete_batch() end
  redis.call('HSET', BATCH_KEY, BATCH.finished, ARGV[3])
  redis.call('XADD', KEYS[2], '*', 'msg', ARGV[4], 'event', 'acceptd.batch_part_done',
    'batch', part[3], 'tenant', ARGV[2], 'at', ARGV[3])
end

-- `...`: fields written with the terminal status (result, error, progress).
local function finish(status, ...)
  set_status(status, JOB.finished, ARGV[3], ...)
  if J.cancel or J.token then redis.call('HDEL', KEYS[1], JOB.cancel, JOB.token) end
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  emit_event(EVENT[status], true)  -- the job's last change: its record goes with it
  notify(status)
  if BATCH_KEY then
    local done = redis.call('HINCRBY', BATCH_KEY, BATCH.terminal, 1)
    -- `items`: this part's share of the batch (a batch on one shard has only `total`).
    local size = redis.call('HMGET', BATCH_KEY, BATCH.items, BATCH.total)
    if done == tonumber(size[1] or size[2]) then complete_part() end
  end
end

-- Bytes a change stores (a result, an error, a request for input) count against the
-- tenant's budget (store/usage.py), under the job's own field: subtracted with it once the
-- job is gone. Never refused here: a worker's verdict is not lost to a full budget; the
-- tenant's next submit is refused instead.
local function count_bytes(usage_key, ...)
  local n = 0
  for _, value in ipairs({...}) do n = n + #value end
  if n > 0 then
    redis.call('HINCRBY', usage_key, ARGV[1], n)
    redis.call('HINCRBY', usage_key, USAGE.total, n)
  end
end

-- (name, value) pairs for the fields among `pairs` whose value is not '' (an argument the
-- caller left out).
local function given(pairs)
  local out = {}
  for i = 1, #pairs, 2 do
    if pairs[i + 1] ~= '' then
      out[#out + 1] = pairs[i]
      out[#out + 1] = pairs[i + 1]
    end
  end
  return out
end
