-- Rolls back a part of a batch that never opened (refused on another shard, or its API
-- stopped before it opened the batch in time): its items, their index entries and bytes,
-- and the part. Once only, like lua/batch_part_release.lua, and never a released part.
-- KEYS[1] the shard's pending parts, KEYS[2] the part's hash, KEYS[3] its job index,
-- KEYS[4] the tenant's job index, KEYS[5] its usage hash, then per item KEYS[2i+4] the job
-- hash and KEYS[2i+5] its arq job key.
-- ARGV[1] batch id, ARGV[i+1] the i-th item's id (every item of the part: the caller read
-- them from KEYS[3]; a list that does not match is refused).
-- Returns the number of items dropped, or -1 when the part was no longer pending.
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return -1 end
if redis.call('ZCARD', KEYS[3]) ~= #ARGV - 1 then
  return redis.error_reply('ERR the items of part ' .. ARGV[1] .. ' changed: read them again')
end
redis.call('ZREM', KEYS[1], ARGV[1])
local freed = 0
for i = 1, #ARGV - 1 do
  local job_id = ARGV[i + 1]
  freed = freed + tonumber(redis.call('HGET', KEYS[5], job_id) or '0')
  redis.call('HDEL', KEYS[5], job_id)
  redis.call('ZREM', KEYS[4], job_id)
  redis.call('DEL', KEYS[2 * i + 4], KEYS[2 * i + 5])
end
if freed > 0 then redis.call('HINCRBY', KEYS[5], USAGE.total, -freed) end
redis.call('DEL', KEYS[2], KEYS[3])
return #ARGV - 1
