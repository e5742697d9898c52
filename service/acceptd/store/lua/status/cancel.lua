-- KEYS[6] arq job key, KEYS[7] arq queue, KEYS[8] scheduled set, KEYS[9] awaiting-input set,
-- KEYS[10] the shard's fair-share hash, KEYS[11] its parked set (lua/_fair.lua, above this:
-- a waiting job leaves its tenant's count, and the slot it may hold frees).
-- ARGV[7] the jobs wake-up channel (told when parked jobs go back into the queue).
-- Returns {'missing'} | {'terminal', status} | {'requested'} | {'canceled'} | {'held'}
load_job(JOB.tenant, JOB.parked, JOB.concurrency_key, JOB.concurrency_limit)
if not J.status or J.tenant ~= ARGV[2] then return {'missing'} end
if is_terminal(J.status) then return {'terminal', J.status} end
-- An item of a batch part still held (its batch not yet open, and maybe never): it may not
-- end before its batch exists (store/batches.py), or the part would finish unheard.
if BATCH_KEY and redis.call('HEXISTS', BATCH_KEY, BATCH.held) == 1 then return {'held'} end
if J.status == 'running' then
  -- The worker running it sees the flag, and forces the stop after its grace period.
  redis.call('HSET', KEYS[1], JOB.cancel, '1')
  return {'requested'}
end
local woken = forget_entry(KEYS[7], KEYS[10], KEYS[11], ARGV[1], J.tenant,
  J.concurrency_key or '', J.concurrency_limit or '0', J.parked)
if woken > 0 then redis.call('SPUBLISH', ARGV[7], '1') end
redis.call('ZREM', KEYS[8], ARGV[1])
redis.call('ZREM', KEYS[9], ARGV[1])
redis.call('DEL', KEYS[6])
finish('canceled')
return {'canceled'}
