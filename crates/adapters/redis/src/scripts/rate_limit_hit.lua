-- Counts one hit in a rolling window unless the window is full, atomically.
--
-- KEYS[1] the counter (zset of hit times in ms)
-- ARGV[1] now (ms since the epoch; scores of the zset)
-- ARGV[2] limit (hits per window)
-- ARGV[3] window (ms, > 0)
-- ARGV[4] unique member for this hit
--
-- Returns {1, 0} when the hit is allowed (and counted), {0, retry_after_ms} when refused
-- (a refused hit is not counted).
local key = KEYS[1]
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])

redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if oldest[2] then
    return {0, math.max(tonumber(oldest[2]) + window - now, 1)}
  end
  return {0, window}
end

redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, window)
return {1, 0}
