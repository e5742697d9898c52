-- The head of an order queue, or nil after dropping an empty queue from the set of queues
-- (in one step: a delivery added meanwhile re-adds its queue, so none is ever lost).
-- KEYS[1] the order queue, KEYS[2] the set of order queues.
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], KEYS[1])
  return false
end
return redis.call('ZRANGE', KEYS[1], 0, 0)[1]
