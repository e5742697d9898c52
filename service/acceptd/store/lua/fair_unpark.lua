-- Puts back into the queue a tenant's jobs parked by its running cap, as many as the cap
-- has room for now (store/fairshare.py apply_limits: a cap raised or removed), with the
-- tags they had (lua/_fair.lua above this). MAX_UNPARK at most: the caller calls again.
-- KEYS[1] the queue, KEYS[2] the fair-share hash, KEYS[3] the parked set.
-- ARGV[1] tenant, ARGV[2] the jobs wake-up channel, ARGV[3] how many went back already
-- (they hold no slot yet). Returns how many went back.
local got = redis.call('HMGET', KEYS[2], 'cap:' .. ARGV[1], 'r:' .. ARGV[1])
local room = got[1] and tonumber(got[1]) - tonumber(got[2] or '0') - tonumber(ARGV[3])
  or MAX_UNPARK
local woken = unpark(KEYS[1], KEYS[3], 't\n' .. ARGV[1], room)
if woken > 0 then redis.call('SPUBLISH', ARGV[2], '1') end
return woken
