-- Takes up to ARGV[3] of the shard's schedules whose tick is due (score <= ARGV[1], ms) for
-- one worker: each moves ARGV[2] ms ahead in the index, so the other workers do not read it
-- again while this one writes its tick (schedule_tick.lua puts it at its next tick), and
-- if this one dies first, another takes it when the lease ends: late by seconds, not lost.
-- KEYS[1] the shard's schedules:due, KEYS[2] its schedules:sizes. ARGV[1] now (ms),
-- ARGV[2] the lease (ms), ARGV[3] the most to take. Returns {the earliest score left in
-- the index after the move, or -1 when empty, then id, size, id, size...}: the bytes of
-- each one's own fields, so the caller reads them in groups of bounded bytes.
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local due = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]))
if #due > 0 then
  local moved = {}
  for _, id in ipairs(due) do
    moved[#moved + 1] = now + lease
    moved[#moved + 1] = id
  end
  redis.call('ZADD', KEYS[1], 'XX', unpack(moved))
end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local reply = {head[2] and tonumber(head[2]) or -1}
if #due > 0 then
  local sizes = redis.call('HMGET', KEYS[2], unpack(due))
  for i, id in ipairs(due) do
    reply[#reply + 1] = id
    reply[#reply + 1] = tonumber(sizes[i] or '0')
  end
end
return reply
