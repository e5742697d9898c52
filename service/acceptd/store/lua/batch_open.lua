-- Opens a batch, or one of its parts on another shard: checks the tenant's job quota and
-- byte budget on this shard and, if the items fit, writes the hash, files it and counts
-- every item's bytes, in one step. It runs first in its shard's MULTI/EXEC, and each chunk
-- of items (lua/batch_items.lua) writes only if the hash exists: a refused batch writes
-- nothing, and no other submit can slip in between the check and the write (they were two
-- round trips once: a race).
-- KEYS[1] the batch's hash (or its part's), KEYS[2] where it is filed: the tenant's batch
-- index for the home, the shard's pending parts for another part, KEYS[3] tenant job index,
-- KEYS[4] the tenant's usage hash (store/usage.py), KEYS[5] (optional) the idempotency key.
-- ARGV[1] batch id, ARGV[2] items on this shard, ARGV[3] job quota (0: none), ARGV[4] byte
-- budget (0: none), ARGV[5] the bytes of the hash (0: not counted), ARGV[6] the bytes of
-- every item, ARGV[7] idempotency value, ARGV[8] its ttl (ms), ARGV[9] the score KEYS[2]
-- files it under, ARGV[10] the deadline (ms) past which the batch may no longer open (its other
-- parts may be rolled back from then on; 0: no such time), ARGV[11] the value of the
-- request's claim on KEYS[5], ARGV[12...] hash field/value pairs.
-- Returns 1, or 0 (past the job quota), -1 (past the byte budget), -2 (too late) or -3 (the
-- claim on the idempotency key lapsed: a retry may hold it) having written nothing.
if #KEYS == 5 and redis.call('GET', KEYS[5]) ~= ARGV[11] then return -3 end
if ARGV[10] ~= '0' then
  local time = redis.call('TIME')
  if tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) > tonumber(ARGV[10]) then
    return -2
  end
end
local quota = tonumber(ARGV[3])
if quota > 0 and redis.call('ZCARD', KEYS[3]) + tonumber(ARGV[2]) > quota then return 0 end
local own, items = tonumber(ARGV[5]), tonumber(ARGV[6])
local stored = redis.call('HINCRBY', KEYS[4], USAGE.total, own + items)
local budget = tonumber(ARGV[4])
if budget > 0 and stored > budget then
  redis.call('HINCRBY', KEYS[4], USAGE.total, -(own + items))
  return -1
end
-- The items' own fields are written with them (batch_items.lua); the total counts them now.
if own > 0 then redis.call('HSET', KEYS[4], ARGV[1], own) end
redis.call('HSET', KEYS[1], unpack(ARGV, 12))
redis.call('ZADD', KEYS[2], ARGV[9], ARGV[1])
if #KEYS == 5 then redis.call('SET', KEYS[5], ARGV[7], 'PX', ARGV[8]) end
return 1
