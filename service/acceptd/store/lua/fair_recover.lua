-- Runs of the job queue whose lease lapsed (their worker died or lost Redis): back into the
-- queue with the tag they had, still holding their slot (lua/_fair.lua above this), for the
-- next worker to run again in it. Leases are timed by the server's clock, and a run's
-- marker and its running-set entry are set and renewed together, so an entry due here is
-- one whose marker lapsed.
-- KEYS[1] the shard's running set, KEYS[2] the queue, KEYS[3] the fair-share hash.
-- ARGV[1] the jobs wake-up channel, ARGV[2] the most to put back in one call.
-- Returns {how many went back, ms until the next lease lapses (-1: nothing runs)}.
local now = server_ms()
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[2])
for _, job_id in ipairs(lapsed) do back_in_slot(KEYS[2], KEYS[1], KEYS[3], job_id) end
if #lapsed > 0 then redis.call('SPUBLISH', ARGV[1], '1') end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#lapsed, first[2] and math.max(0, tonumber(first[2]) - now) or -1}
