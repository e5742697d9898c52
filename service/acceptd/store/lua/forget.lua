-- Drops index entries whose records are gone, and subtracts what each had added to its
-- tenant's stored bytes (store/usage.py). The record and its webhook bodies must both be
-- gone: a job's bodies outlive it while deliveries of its events are owed, and are counted
-- with it until then. Checked here, not by the caller, so an entry is never dropped (and
-- its bytes never subtracted) for a record that exists.
-- KEYS[1] the index, KEYS[2] the tenant's usage hash, then per entry i: KEYS[2i+1] its
-- record, KEYS[2i+2] its webhook bodies. ARGV[1] '1' to subtract from the usage hash
-- ('0': an index without a count, such as a batch's), ARGV[i+1] the entry's id.
local dropped = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('EXISTS', KEYS[2 * i - 1], KEYS[2 * i]) == 0 then
    redis.call('ZREM', KEYS[1], id)
    if ARGV[1] == '1' then
      local added = redis.call('HGET', KEYS[2], id)
      if added then
        redis.call('HDEL', KEYS[2], id)
        redis.call('HINCRBY', KEYS[2], USAGE.total, -tonumber(added))
      end
    end
    dropped = dropped + 1
  end
end
return dropped
