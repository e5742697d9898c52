-- Drops our own claim (and only ours) when the request fails before anything was created.
-- KEYS[1] the idempotency key. ARGV[1] our claim: the value the key was claimed with.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
