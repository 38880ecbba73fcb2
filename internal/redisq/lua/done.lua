-- done: a worker finished its processing list: drop it and the attempt
-- counters of its items.
-- KEYS[1] processing list, KEYS[2] attempts hash
-- ARGV attempt keys of the items (may be empty)
-- returns 1
redis.call('DEL', KEYS[1])
if #ARGV > 0 then
  redis.call('HDEL', KEYS[2], unpack(ARGV))
end
return 1
