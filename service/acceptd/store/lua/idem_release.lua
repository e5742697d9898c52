-- Drops our own claim (and only ours: ARGV[1], the value it was claimed with) when the
-- request fails before anything was created.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
