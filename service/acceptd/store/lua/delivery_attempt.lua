-- Records attempt N and what follows it. Ignored (returns 0) unless the delivery is pending and
-- N is its next attempt: a duplicate run of the same attempt must not record twice.
-- Each attempt N is a field of the delivery's hash, DELIVERY.attempt .. N (not a list of
-- its own: one key and two commands less per delivery). The hash says where the delivery
-- stands: DELIVERY.next_attempt set means it is in the due set, DELIVERY.lease set means it
-- holds an inline lease. Each is cleared only where it was set, and a lease marker left on
-- a finished delivery (its lease is gone from the set) costs one field rather than a command.
-- A counted delivery (DELIVERY.body_field or DELIVERY.owed set, DELIVERY.uncounted not)
-- charges each attempt it keeps to its subject in the tenant's usage hash: manual retries
-- add attempts without end, and each is stored.
-- KEYS[1] delivery hash, KEYS[2] its attempts list (only deliveries made before attempts
-- were fields have one: those without DELIVERY.attempts_in_hash), KEYS[3] due set,
-- KEYS[4] next attempt's arq job key, KEYS[5] arq queue, KEYS[6] the inline lease set,
-- KEYS[7] the subject's webhook bodies hash, KEYS[8] the tenant's usage hash, then for an
-- attempt that may end it failed: KEYS[9] (optional) the shard's events stream, KEYS[10]
-- (optional) the shard's copy of the tenant's subscription counts.
-- ARGV[1] delivery id, ARGV[2] N, the attempt's number, ARGV[3] attempt JSON,
-- ARGV[4] new status, ARGV[5] next due (ms, when pending), ARGV[6] next arq payload,
-- ARGV[7] retention (ms), ARGV[8] next arq job id, ARGV[9] the subject's usage field,
-- ARGV[10] how many attempts are kept (the newest: attempt N-ARGV[10] goes as N comes),
-- ARGV[11] the shard's webhooks wake-up channel: a next attempt queued is announced on it,
-- like every delivery queued, so that dispatchers sleeping until the queue's next due
-- time wake to read it again (the dispatcher that made the attempt too),
-- ARGV[12...] the fields of a `delivery.exhausted` event (store/operational.py): when the
-- delivery fails for good and its tenant has an endpoint subscribed to that event (the
-- copy of the counts says), the event is written to the events stream in the same step.
local fields = redis.call('HMGET', KEYS[1], DELIVERY.status, DELIVERY.attempt_count,
  DELIVERY.next_attempt, DELIVERY.lease, DELIVERY.attempts_in_hash, DELIVERY.body_field,
  DELIVERY.owed, DELIVERY.uncounted)
if fields[1] ~= 'pending' or tonumber(fields[2] or '0') ~= tonumber(ARGV[2]) - 1 then return 0 end
local leased = fields[4] and fields[4] ~= ''
local due = fields[3] and fields[3] ~= ''
local owed = fields[6] or fields[7]
local added = #ARGV[3]
local dropped = tonumber(ARGV[2]) - tonumber(ARGV[10])
if dropped >= 1 then
  local field = DELIVERY.attempt .. dropped
  added = added - redis.call('HSTRLEN', KEYS[1], field)
  redis.call('HDEL', KEYS[1], field)
end
if owed and not fields[8] then
  redis.call('HINCRBY', KEYS[8], ARGV[9], added)
  redis.call('HINCRBY', KEYS[8], USAGE.total, added)
end
local changes = {DELIVERY.attempt .. ARGV[2], ARGV[3], DELIVERY.attempt_count, ARGV[2],
  DELIVERY.status, ARGV[4]}
if leased then redis.call('ZREM', KEYS[6], ARGV[1]) end
if ARGV[4] == 'pending' then
  table.insert(changes, DELIVERY.next_attempt)
  table.insert(changes, ARGV[5])
  if leased then
    table.insert(changes, DELIVERY.lease)
    table.insert(changes, '')
  end
  redis.call('HSET', KEYS[1], unpack(changes))
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
  redis.call('SET', KEYS[4], ARGV[6])
  redis.call('ZADD', KEYS[5], ARGV[5], ARGV[8])
  redis.call('SPUBLISH', ARGV[11], '1')
else
  if due then
    table.insert(changes, DELIVERY.next_attempt)
    table.insert(changes, '')
    redis.call('ZREM', KEYS[3], ARGV[1])
  end
  redis.call('HSET', KEYS[1], unpack(changes))
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  if not fields[5] then redis.call('PEXPIRE', KEYS[2], ARGV[7]) end
  -- Its body is owed one delivery less; the last one to end starts the body's retention
  -- (every other delivery sharing it ended earlier, so expires no later).
  if owed and redis.call('HINCRBY', KEYS[7], 'p', -1) <= 0 then
    redis.call('PEXPIRE', KEYS[7], ARGV[7])
  end
  if ARGV[4] == 'failed' and #KEYS >= 10
      and tonumber(redis.call('HGET', KEYS[10], 'delivery.exhausted') or '0') > 0 then
    redis.call('XADD', KEYS[9], '*', unpack(ARGV, 12))
  end
end
return 1
