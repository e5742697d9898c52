-- Opens a batch: checks the tenant's job quota and byte budget and, if the batch fits,
-- writes the batch hash, indexes it and counts every item's bytes, in one step. It runs
-- first in the batch's MULTI/EXEC, and each chunk of items (lua/batch_items.lua) writes
-- only if the batch hash exists: a refused batch writes nothing, and no other submit can
-- slip in between the check and the write (they were two round trips once: a race).
-- KEYS[1] batch hash, KEYS[2] tenant batch index, KEYS[3] tenant job index, KEYS[4] the
-- tenant's usage hash (store/usage.py), KEYS[5] (optional) the idempotency key.
-- ARGV[1] batch id, ARGV[2] items, ARGV[3] job quota (0: none), ARGV[4] byte budget
-- (0: none), ARGV[5] the bytes of the batch hash, ARGV[6] the bytes of every item,
-- ARGV[7] idempotency value, ARGV[8] its ttl (ms), ARGV[9...] batch hash field/value pairs.
-- Returns 1, or 0 (past the job quota) or -1 (past the byte budget) having written nothing.
local quota = tonumber(ARGV[3])
if quota > 0 and redis.call('ZCARD', KEYS[3]) + tonumber(ARGV[2]) > quota then return 0 end
local own, items = tonumber(ARGV[5]), tonumber(ARGV[6])
local stored = redis.call('HINCRBY', KEYS[4], 'bytes', own + items)
local budget = tonumber(ARGV[4])
if budget > 0 and stored > budget then
  redis.call('HINCRBY', KEYS[4], 'bytes', -(own + items))
  return -1
end
-- The items' own fields are written with them (batch_items.lua); the total counts them now.
redis.call('HSET', KEYS[4], ARGV[1], own)
redis.call('HSET', KEYS[1], unpack(ARGV, 9))
redis.call('ZADD', KEYS[2], 0, ARGV[1])
if #KEYS == 5 then redis.call('SET', KEYS[5], ARGV[7], 'PX', ARGV[8]) end
return 1
