-- KEYS[1] idempotency key. ARGV[1] request fingerprint, ARGV[2] lock time (ms), ARGV[3] this
-- request's claim: a random token, so the create step writes only under its own claim.
-- Value: 'P <fingerprint> <token>' while the first request is handled, 'D <fingerprint>
-- <job id>' after.
local value = redis.call('GET', KEYS[1])
if not value then
  redis.call('SET', KEYS[1], 'P ' .. ARGV[1] .. ' ' .. ARGV[3], 'PX', ARGV[2])
  return {'claimed'}
end
local state, fingerprint, job_id = string.match(value, '^(%a) (%x+) ?(%S*)$')
if fingerprint ~= ARGV[1] then return {'mismatch'} end
if state == 'P' then return {'busy'} end
return {'done', job_id}
