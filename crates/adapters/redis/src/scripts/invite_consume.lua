-- Deletes an invite code if it names the given invite, atomically (compare-and-delete): of
-- any number of concurrent calls for one code, exactly one gets 1.
--
-- KEYS[1] the code's key (value = the invite id)
-- ARGV[1] the invite id
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
