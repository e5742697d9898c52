-- One part of a batch over many shards finished (its last item reached a terminal status):
-- the home counts it, once per part, and completes the batch when every part has. Run by
-- the dispatcher that read the part's internal event (dispatcher/fanout.py); a replayed
-- event counts nothing twice.
-- KEYS[1] and KEYS[4] the batch's home hash, KEYS[2] the home shard's events stream,
-- KEYS[3] the tenant's event-subscription counts there, KEYS[5] the home part's job index.
-- ARGV[1] batch id, ARGV[2] tenant, ARGV[3] now (ms), ARGV[4] unused, ARGV[5] retention
-- (ms), ARGV[6] unused, ARGV[7] the shard of the part that finished.
-- Returns 2 when the batch is complete (now, or before: a replayed event), 1 when it is not
-- yet, 0 when there is no batch. The caller expires the other parts on 2 (store/batches.py).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], BATCH.part_done .. ARGV[7], '1') == 0 then
  return redis.call('HEXISTS', KEYS[1], BATCH.completed) == 1 and 2 or 1
end
local done = redis.call('HINCRBY', KEYS[1], BATCH.parts_done, 1)
if done < tonumber(redis.call('HGET', KEYS[1], BATCH.parts) or '1') then return 1 end
BATCH_KEY = KEYS[1]
complete_batch()
return 2
