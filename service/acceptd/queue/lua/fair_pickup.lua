-- The pickup of one job of the fair-share queue (store/lua/_fair.lua above this): what
-- arq_pickup.lua does, plus the job's slot. A job that its tenant's running cap or its
-- concurrency key's limit has no room for is parked (out of the queue, its tag kept) and
-- goes back when a slot of that limit frees; a job that already holds a slot (its worker
-- died) runs again in it. A job taken leaves the queue for the running set until its run
-- ends, so what waits is always at the queue's head, however many run. Every entry is
-- due: a job that waits for a time waits in the scheduled or retrying set, not here.
-- KEYS[1] arq's in-progress marker, KEYS[2] the queue, KEYS[3] arq's job key, KEYS[4] the
-- job hash, KEYS[5] the shard's fair-share hash, KEYS[6] its parked set, KEYS[7] its
-- running set.
-- ARGV[1] job id, ARGV[2] how long the marker (the run's lease) lives (ms), ARGV[3] the
-- run's token: the marker holds it, and only the run that holds it may end the run.
-- Returns false when the job left the queue or another worker holds it, 'parked', else
-- {score, payload} (payload false when arq's job key is gone). The same pickup sent again
-- (its connection dropped after it ran: store/batching.py sends what went unanswered
-- again) finds its own token in the marker and replies as the first did, its score then
-- the running set's.
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score then
  if redis.call('GET', KEYS[1]) ~= ARGV[3] then return false end
  return {redis.call('ZSCORE', KEYS[7], ARGV[1]) or '0', redis.call('GET', KEYS[3])}
end
if not redis.call('SET', KEYS[1], ARGV[3], 'NX', 'PX', ARGV[2]) then return false end
local job = redis.call('HMGET', KEYS[4], JOB.tenant, JOB.concurrency_key,
  JOB.concurrency_limit)
local tenant, key, limit = job[1] or '', job[2] or '', job[3] or '0'
local lane, tag = lane_and_tag(score)
-- Everything of the hash this needs, in one read: its slot, if it holds one already; the
-- lane's virtual time; its limits and what holds them.
local got = redis.call('HMGET', KEYS[5], 's:' .. ARGV[1], 'v:' .. lane, 'cap:' .. tenant,
  'r:' .. tenant, 'k:' .. tenant .. '\n' .. key)
if not got[1] then
  local limiter = tenant ~= '' and refused_by(tenant, key, limit, got[3], got[4], got[5])
  if limiter then
    local member = parked_member(limiter, score, ARGV[1])
    redis.call('DEL', KEYS[1])
    redis.call('ZREM', KEYS[2], ARGV[1])
    redis.call('ZADD', KEYS[6], 0, member)
    -- So a cancel finds it (lua/status/cancel.lua); stale once woken, which is harmless.
    redis.call('HSET', KEYS[4], JOB.parked, member)
    return 'parked'
  end
  hold_slot(KEYS[5], ARGV[1], tenant, key, limit, score)
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[7], server_ms() + tonumber(ARGV[2]), ARGV[1])
-- The lane's virtual time moves up to the tag taken.
if tag > tonumber(got[2] or '0') then redis.call('HSET', KEYS[5], 'v:' .. lane, num(tag)) end
return {score, redis.call('GET', KEYS[3])}
