-- Issues a one-time code for one phone, within its send limits, atomically.
--
-- KEYS[1] code  (hash: h = code hash, a = wrong attempts, b = 1 when burned)
-- KEYS[2] sends (zset of send times in ms, rolling hour)
-- KEYS[3] next  (resend interval marker, PX)
-- ARGV[1] now (ms since the epoch; scores of the zset)
-- ARGV[2] code hash (hex)
-- ARGV[3] code TTL (ms, > 0)
-- ARGV[4] resend interval (ms, 0 = none)
-- ARGV[5] max sends per rolling hour
-- ARGV[6] unique member for this send
--
-- Returns {1, 0} when issued, {0, retry_after_ms} when a limit holds (nothing changed then,
-- except that sends older than an hour are pruned).
local code, sends, nxt = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[3])
local resend = tonumber(ARGV[4])
local max_sends = tonumber(ARGV[5])
local hour = 3600000

redis.call('ZREMRANGEBYSCORE', sends, '-inf', now - hour)

local pttl = redis.call('PTTL', nxt)
if pttl == -1 then
  -- A marker without expiry cannot come from this script; refuse for one interval.
  return {0, math.max(resend, 1)}
elseif pttl >= 0 then
  return {0, math.max(pttl, 1)}
end

if redis.call('ZCARD', sends) >= max_sends then
  local oldest = redis.call('ZRANGE', sends, 0, 0, 'WITHSCORES')
  if oldest[2] then
    return {0, math.max(tonumber(oldest[2]) + hour - now, 1)}
  end
  return {0, hour}
end

redis.call('DEL', code)
redis.call('HSET', code, 'h', ARGV[2], 'a', 0)
redis.call('PEXPIRE', code, ttl)
if resend > 0 then
  redis.call('SET', nxt, 1, 'PX', resend)
end
redis.call('ZADD', sends, now, ARGV[6])
redis.call('PEXPIRE', sends, hour)
return {1, 0}
