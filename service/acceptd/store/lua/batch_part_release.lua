-- Queues the held items of a batch's part on another shard than its home, once the batch
-- exists (store/batches.py): the API right after the batch opened, or a worker that finds
-- the part still pending (the API stopped in between). Once only: whoever takes the part
-- off the pending index queues it; a part already released or rolled back is left alone.
-- KEYS[1] the shard's pending parts, KEYS[2] the part's job index, KEYS[3] arq queue,
-- KEYS[4] the part's hash (its `held` mark, which keeps its items from being canceled
-- before the batch exists, goes).
-- ARGV[1] batch id, ARGV[2] queue score, ARGV[3] the jobs wake-up channel.
-- Returns the number of items queued.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[4], 'held')
local job_ids = redis.call('ZRANGE', KEYS[2], 0, -1)
-- In slices: unpack takes a few thousand values at most.
for first = 1, #job_ids, 1000 do
  local queued = {}
  for i = first, math.min(first + 999, #job_ids) do
    queued[#queued + 1] = ARGV[2]
    queued[#queued + 1] = job_ids[i]
  end
  redis.call('ZADD', KEYS[3], unpack(queued))
end
redis.call('SPUBLISH', ARGV[3], '1')
return #job_ids
