-- Checks a candidate code hash against one phone's live code, atomically.
--
-- KEYS[1] code  (hash: h = code hash, a = wrong attempts, b = 1 when burned)
-- KEYS[2] fails (zset of failure times in ms, rolling hour)
-- ARGV[1] now (ms since the epoch; scores of the zset)
-- ARGV[2] candidate hash (hex)
-- ARGV[3] max wrong attempts per code
-- ARGV[4] max failures per phone per rolling hour
-- ARGV[5] unique member for a failure
--
-- Returns {kind, value, wrong}: {0, 0} valid (the code is deleted), {1, attempts_left} invalid,
-- {2, 0} no code, {3, 0} burned, {4, retry_after_ms} locked; `wrong` is 1 when this call
-- counted a wrong code (for the admin traffic stats), else 0.
local code, fails = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local candidate = ARGV[2]
local max_attempts = tonumber(ARGV[3])
local max_failures = tonumber(ARGV[4])
local hour = 3600000

-- The stored value and the candidate are HMACs of the phone and the code under a server
-- secret, so even an early-exit comparison would leak nothing useful about the code; the
-- comparison still reads every byte.
local function same(x, y)
  if #x ~= #y then
    return false
  end
  local diff = 0
  for i = 1, #x do
    diff = bit.bor(diff, bit.bxor(string.byte(x, i), string.byte(y, i)))
  end
  return diff == 0
end

redis.call('ZREMRANGEBYSCORE', fails, '-inf', now - hour)
if redis.call('ZCARD', fails) >= max_failures then
  local oldest = redis.call('ZRANGE', fails, 0, 0, 'WITHSCORES')
  if oldest[2] then
    return {4, math.max(tonumber(oldest[2]) + hour - now, 1), 0}
  end
  return {4, hour, 0}
end

local stored = redis.call('HMGET', code, 'h', 'b')
if not stored[1] then
  return {2, 0, 0}
end
if stored[2] == '1' then
  return {3, 0, 0}
end

if same(stored[1], candidate) then
  redis.call('DEL', code)
  return {0, 0, 0}
end

local attempts = redis.call('HINCRBY', code, 'a', 1)
redis.call('ZADD', fails, now, ARGV[5])
redis.call('PEXPIRE', fails, hour)
if attempts >= max_attempts then
  -- HSET keeps the key's TTL: a burned code goes away when the code would have.
  redis.call('HSET', code, 'b', 1)
  return {3, 0, 1}
end
return {1, max_attempts - attempts, 1}
