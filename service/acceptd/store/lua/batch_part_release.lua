-- Queues the held items of a batch's part on another shard than its home, once the batch
-- exists (store/batches.py): the API right after the batch opened, or a worker that finds
-- the part still pending (the API stopped in between). Once only: whoever takes the part
-- off the pending index queues it; a part already released or rolled back is left alone.
-- KEYS[1] the shard's pending parts, KEYS[2] the part's job index, KEYS[3] arq queue,
-- KEYS[4] the part's hash (its `held` mark, which keeps its items from being canceled
-- before the batch exists, goes), KEYS[5] the shard's fair-share hash (lua/_fair.lua, above
-- this: the items get their tags now, in their order).
-- ARGV[1] batch id, ARGV[2] the jobs wake-up channel.
-- Returns the number of items queued.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[4], BATCH.held)
local job_ids = redis.call('ZRANGE', KEYS[2], 0, -1)
local part = redis.call('HMGET', KEYS[4], BATCH.tenant, BATCH.priority)
fair_enqueue(KEYS[3], KEYS[5], part[1], part[2], job_ids)
redis.call('SPUBLISH', ARGV[2], '1')
return #job_ids
