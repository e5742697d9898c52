-- Fair share between tenants (store/fairshare.py says why this design): prepended to every
-- script that puts jobs into a shard's job queue, takes them out, or runs them. It works
-- on these keys of the shard, which the script declares:
--   the queue (arq's sorted set): a job's score is its *tag*, not a due time; a job a
--   worker took leaves it for the running set (keys.running_jobs) while it runs;
--   the shard's fair-share hash (keys.fair_share), fields:
--     v:<lane>          the lane's virtual time: the highest tag a worker has taken
--     f:<lane>:<tenant> the tag after the tenant's last queued job in the lane
--     w:<tenant>        its weight (absent: 1), cap:<tenant> its running cap (absent: none)
--     q:<tenant>        its entries (queued, running or parked), r:<tenant> its running
--     k:<tenant>\n<key> running jobs of a concurrency key
--     s:<job id>        "<tenant>\n<key>\n<limit>\n<score>": the job holds a slot (running,
--                       or waiting to run again after its worker died), and the score it
--                       goes back into the queue with if so
--   the parked set (keys.parked_jobs): jobs refused a slot, out of the queue until one frees:
--     members "<limiter>\n<16-digit score + HIGH_LANE>\n<job id>", all scored 0, so each
--     limiter's jobs are one lexicographic range in tag order.
-- Lane 'n' is normal priority, 'h' high: high scores are tags - HIGH_LANE, below every
-- normal score, so a high job is always taken first. store/fairshare.py writes the
-- constants COST, HIGH_LANE and MAX_UNPARK above this, and ENDED (the terminal statuses).

-- Tags are integers below 2^53; Redis would print a Lua number with 14 digits.
local function num(x) return string.format('%d', x) end

local function lane_of(priority) return priority == 'high' and 'h' or 'n' end

-- The server's clock in ms: leases are timed by it, so a worker's clock cannot stretch them.
local function server_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end

-- Queues `ids` (in order) for `tenant` in the lane of `priority`: start-time fair queueing.
-- The first takes the later of the lane's virtual time and the tenant's last tag, each next
-- one COST / weight more: a tenant's backlog delays its own jobs only, a tenant that was
-- idle starts at the front, and weights give shares in proportion.
local function fair_enqueue(queue, state, tenant, priority, ids)
  local lane = lane_of(priority)
  local last = 'f:' .. lane .. ':' .. tenant
  local got = redis.call('HMGET', state, 'v:' .. lane, last, 'w:' .. tenant)
  local step = math.max(1, math.floor(COST / tonumber(got[3] or '1')))
  local tag = math.max(tonumber(got[1] or '0'), tonumber(got[2] or '0'))
  local offset = lane == 'h' and -HIGH_LANE or 0
  -- In slices: unpack takes a few thousand values at most.
  for first = 1, #ids, 1000 do
    local entries = {}
    for i = first, math.min(first + 999, #ids) do
      entries[#entries + 1] = num(tag + offset)
      entries[#entries + 1] = ids[i]
      tag = tag + step
    end
    redis.call('ZADD', queue, unpack(entries))
  end
  redis.call('HSET', state, last, num(tag))
  redis.call('HINCRBY', state, 'q:' .. tenant, #ids)
end

-- One entry of `tenant` left the queue for good (finished, canceled, or waiting out a
-- delay). Its last one gone, the tenant's tags go too: it starts again at the lane's
-- virtual time, not behind the backlog it canceled.
local function fair_left(state, tenant)
  if redis.call('HINCRBY', state, 'q:' .. tenant, -1) <= 0 then
    redis.call('HDEL', state, 'q:' .. tenant, 'f:n:' .. tenant, 'f:h:' .. tenant)
  end
end

-- The lane of a queue score, and its tag.
local function lane_and_tag(score)
  local tag = tonumber(score)
  if tag < 0 then return 'h', tag + HIGH_LANE end
  return 'n', tag
end

local function parked_member(limiter, score, job_id)
  return limiter .. '\n' .. string.format('%016d', tonumber(score) + HIGH_LANE) .. '\n' .. job_id
end

-- Back into the queue, with the tags they had: up to `n` parked jobs of `limiter`, oldest
-- tag first. Returns how many. A woken job holds no slot yet: if it leaves the queue
-- without taking one (canceled), its leaving wakes the next (forget_entry).
local function unpark(queue, parked, limiter, n)
  if n <= 0 then return 0 end
  local members = redis.call('ZRANGEBYLEX', parked, '[' .. limiter .. '\n',
    '[' .. limiter .. '\n\255', 'LIMIT', 0, math.min(n, MAX_UNPARK))
  for _, member in ipairs(members) do
    local score, job_id = string.match(member, '\n(%d+)\n([^\n]+)$')
    redis.call('ZREM', parked, member)
    redis.call('ZADD', queue, num(tonumber(score) - HIGH_LANE), job_id)
  end
  return #members
end

-- The limits a job must fit in to take a slot: the tenant's running cap, and its
-- concurrency key's limit, given the hash's cap:, r: and k: fields of them (read by the
-- caller with what else it needs). Returns the limiter that refuses it, or false.
local function refused_by(tenant, key, limit, cap, running, held)
  if cap and tonumber(running or '0') >= tonumber(cap) then return 't\n' .. tenant end
  if key ~= '' and tonumber(held or '0') >= tonumber(limit) then
    return 'k\n' .. tenant .. '\n' .. key
  end
  return false
end

-- A job of no known tenant (its record gone) holds a slot that counts against nothing.
local function hold_slot(state, job_id, tenant, key, limit, score)
  redis.call('HSET', state, 's:' .. job_id, tenant .. '\n' .. key .. '\n' .. limit .. '\n' .. score)
  if tenant == '' then return end
  redis.call('HINCRBY', state, 'r:' .. tenant, 1)
  if key ~= '' then redis.call('HINCRBY', state, 'k:' .. tenant .. '\n' .. key, 1) end
end

-- A run out of the running set and back into the queue (its worker died, or stopped and
-- handed it back), still holding its slot, with the tag it had: it keeps its place.
-- Returns whether it was running.
local function back_in_slot(queue, running, state, job_id)
  if redis.call('ZREM', running, job_id) == 0 then return false end
  local slot = redis.call('HGET', state, 's:' .. job_id)
  redis.call('ZADD', queue, slot and string.match(slot, '\n([^\n]*)$') or '0', job_id)
  return true
end

-- Fenced: whether a run whose lease lapsed lost its job to another worker since (the
-- marker holds that run's token): such a run touches nothing.
local function lost_run(marker, token)
  local holder = redis.call('GET', marker)
  return holder and holder ~= token
end

-- A count of the hash one lower. `drop` deletes it at zero: a concurrency key's count,
-- one field per key ever used otherwise; a tenant's running count stays (one a tenant).
local function count_down(state, field, drop)
  local left = redis.call('HINCRBY', state, field, -1)
  if drop and left <= 0 then redis.call('HDEL', state, field) end
  return math.max(left, 0)
end

-- Wakes the next parked job of each limit the job counts against, if that limit has room,
-- given how many of the tenant's jobs and of the key's hold a slot now: one at most, as
-- one slot frees at a time (a job of the same key with a larger limit must not wake a
-- crowd that only parks again). A tenant with no cap has no job parked by one (lifting a
-- cap wakes them all: fairshare.apply_limits).
local function wake_next(queue, state, parked, tenant, key, limit, running, held)
  local woken = 0
  local cap = redis.call('HGET', state, 'cap:' .. tenant)
  if cap and tonumber(cap) > running then
    woken = unpark(queue, parked, 't\n' .. tenant, 1)
  end
  if key ~= '' and tonumber(limit) > held then
    woken = woken + unpark(queue, parked, 'k\n' .. tenant .. '\n' .. key, 1)
  end
  return woken
end

-- The job's run ended (or it waits out a delay): its slot frees, and the next parked job
-- of each of its limits goes back into the queue. Returns the tenant it held a slot for
-- (false if it held none) and how many jobs went back.
local function release_slot(queue, state, parked, job_id)
  local slot = redis.call('HGET', state, 's:' .. job_id)
  if not slot then return false, 0 end
  redis.call('HDEL', state, 's:' .. job_id)
  local tenant, key, limit = string.match(slot, '^([^\n]*)\n([^\n]*)\n(%d*)\n')
  if tenant == '' then return false, 0 end
  local running, held = count_down(state, 'r:' .. tenant, false), 0
  if key ~= '' then held = count_down(state, 'k:' .. tenant .. '\n' .. key, true) end
  return tenant, wake_next(queue, state, parked, tenant, key, limit, running, held)
end

-- A job ends before its run (canceled): its entry goes, from the queue or the parked set
-- (`parked_as`, the member it was parked as, if it was), with the slot it may hold (a
-- worker that stopped handed it back). If it was waiting, the next parked job of its
-- limits may take its turn. Returns how many jobs went back.
local function forget_entry(queue, state, parked, job_id, tenant, key, limit, parked_as)
  local waiting = redis.call('ZREM', queue, job_id) == 1
  if not waiting and parked_as then waiting = redis.call('ZREM', parked, parked_as) == 1 end
  local held, woken = release_slot(queue, state, parked, job_id)
  if waiting then
    fair_left(state, tenant)
    -- A job that waited without a slot may have been woken for one: its turn passes on
    -- (one that held a slot passed it on above).
    if not held then
      local got = redis.call('HMGET', state, 'r:' .. tenant, 'k:' .. tenant .. '\n' .. key)
      woken = woken + wake_next(queue, state, parked, tenant, key, limit,
        tonumber(got[1] or '0'), tonumber(got[2] or '0'))
    end
  end
  return woken
end
