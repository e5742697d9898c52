-- Persists a delivery and, in one step, the way its first attempt will be made; a replayed
-- fan-out is a no-op. ARGV[10] says which way:
--   'queue':  an arq job due now (a dispatcher is woken for it);
--   'inline': the dispatcher that made it sends it at once, holding a lease in the inline
--             lease set (renewed while it sends): if that dispatcher dies, the lease lapses
--             and a sweeper queues the attempt (dispatcher/inline.py);
--   'held':   to an ordered endpoint: queued when it heads its key's queue (store/ordering.py).
-- KEYS[1] delivery hash, KEYS[2] job's delivery list, KEYS[3] due set, KEYS[4] arq job key,
-- KEYS[5] arq queue, KEYS[6] tenant's delivery index, KEYS[7] endpoint's delivery index,
-- KEYS[8] its key's order queue (ordered endpoints), KEYS[9] the set of order queues,
-- KEYS[10] the inline lease set, KEYS[11] the subject's webhook bodies hash, KEYS[12] the
-- tenant's usage hash (store/usage.py).
-- ARGV[1] delivery id, ARGV[2] arq payload, ARGV[3] due, or the lease's end (ms),
-- ARGV[4] retention (ms), ARGV[5] arq job id, ARGV[6] wake-up channel, ARGV[7] '1' if to an
-- endpoint, ARGV[8] the oldest id the indexes keep, or '' to leave them untrimmed this time
-- (the caller trims one write in so many), ARGV[9] its place in the order queue,
-- ARGV[10] 'queue' | 'inline' | 'held', ARGV[11] the body's field in the bodies hash
-- ('' when the delivery holds its body in its own hash, among its fields), ARGV[12] the
-- shared body, ARGV[13] the usage field it is charged to ('' for none), ARGV[14] what the
-- delivery itself is charged (its fields, a body of its own among them), ARGV[15...]
-- field/value pairs (DELIVERY's fields).
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 15))
-- One body per (event, shape), however many deliveries send it: the first one writes it.
-- `p` counts the subject's deliveries still owed, shared body or not (a counted one with a
-- body of its own carries DELIVERY.owed): the hash lives until the last ends (no expiry
-- meanwhile: one ended earlier may have set one), and while it lives the subject's charge
-- stays (lua/forget.lua), so a delivery kept pending for long cannot outlive what its
-- bytes are counted under.
local new_body = 0
if ARGV[11] ~= '' then new_body = redis.call('HSETNX', KEYS[11], ARGV[11], ARGV[12]) end
if ARGV[11] ~= '' or ARGV[13] ~= '' then
  if redis.call('HINCRBY', KEYS[11], 'p', 1) == 1 then redis.call('PERSIST', KEYS[11]) end
end
if ARGV[13] ~= '' then
  local charge = tonumber(ARGV[14])
  if new_body == 1 then charge = charge + #ARGV[12] end
  redis.call('HINCRBY', KEYS[12], ARGV[13], charge)
  redis.call('HINCRBY', KEYS[12], USAGE.total, charge)
end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if ARGV[10] == 'held' then
  redis.call('ZADD', KEYS[8], 0, ARGV[9])
  redis.call('SADD', KEYS[9], KEYS[8])
elseif ARGV[10] == 'inline' then
  redis.call('ZADD', KEYS[10], ARGV[3], ARGV[1])
else
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
  redis.call('SET', KEYS[4], ARGV[2])
  redis.call('ZADD', KEYS[5], ARGV[3], ARGV[5])
  redis.call('SPUBLISH', ARGV[6], '1')
end
-- Indexes by id (all scores 0: ids sort by time); entries past retention are cut now and then.
redis.call('ZADD', KEYS[6], 0, ARGV[1])
if ARGV[8] ~= '' then redis.call('ZREMRANGEBYLEX', KEYS[6], '-', '(' .. ARGV[8]) end
if ARGV[7] == '1' then
  redis.call('ZADD', KEYS[7], 0, ARGV[1])
  if ARGV[8] ~= '' then redis.call('ZREMRANGEBYLEX', KEYS[7], '-', '(' .. ARGV[8]) end
end
return 1
