-- The deadline of a job awaiting input passed: it fails. KEYS[6] awaiting-input set.
-- ARGV[7] error JSON. Returns 1 if the job timed out here, 0 if it had moved on.
local fields = redis.call('HMGET', KEYS[1], 'status', 'await_deadline')
if fields[1] ~= 'awaiting_input' then
  redis.call('ZREM', KEYS[6], ARGV[1])
  return 0
end
if tonumber(fields[2]) > tonumber(ARGV[3]) then return 0 end
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('HSET', KEYS[1], 'error', ARGV[7])
finish('failed')
return 1
