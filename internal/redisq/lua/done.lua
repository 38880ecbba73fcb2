-- done: a worker finished some items: remove exactly those from its
-- processing list (by value, one occurrence each, searched from the tail
-- where the oldest sit) and drop their attempt counters. Anything else in the
-- list stays there for the worker's next take.
-- KEYS[1] processing list, KEYS[2] attempts hash
-- ARGV[1] the number n of items; ARGV[2..n+1] the raw items;
-- ARGV[n+2..] the attempt keys to drop (may be empty)
-- returns the length of the processing list afterwards
local n = tonumber(ARGV[1])
for i = 2, n + 1 do
  redis.call('LREM', KEYS[1], -1, ARGV[i])
end
if #ARGV > n + 1 then
  redis.call('HDEL', KEYS[2], unpack(ARGV, n + 2))
end
return redis.call('LLEN', KEYS[1])
