-- Records that a member's tokens issued at or before `at` are revoked, keeping the latest
-- such time when one is already recorded, atomically.
--
-- KEYS[1] the member's `all` key (value = seconds since the epoch)
-- ARGV[1] at (seconds since the epoch)
-- ARGV[2] TTL (seconds, > 0)
local key = KEYS[1]
local at = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])

local current = tonumber(redis.call('GET', key) or '')
if current == nil or at > current then
  redis.call('SET', key, ARGV[1], 'EX', ttl)
elseif redis.call('TTL', key) < ttl then
  -- Keep the later time, and refuse for at least as long as this call asked.
  redis.call('EXPIRE', key, ttl)
end
return 1
