-- done: a worker finished some items: remove exactly those from its
-- processing list and drop their attempt counters. Anything else in the list
-- stays there for the worker's next take.
-- Usually the finished items are the list's tail, in order (a take hands
-- over the oldest, which sit at the tail; whatever a late call added went to
-- the head): then one LTRIM removes them, which also keeps the AOF small.
-- Otherwise (an item in between was not finished) each is removed by value,
-- one occurrence each, searched from the tail.
-- KEYS[1] processing list, KEYS[2] attempts hash
-- ARGV[1] the number n of items; ARGV[2..n+1] the raw items, oldest first;
-- ARGV[n+2..] the attempt keys to drop (may be empty)
-- returns the length of the processing list afterwards
local n = tonumber(ARGV[1])
if n > 0 then
  local tail = redis.call('LRANGE', KEYS[1], -n, -1)
  local inOrder = #tail == n
  for i = 1, n do
    if not inOrder then
      break
    end
    -- tail holds the newest first: the oldest finished item is its last.
    inOrder = tail[n - i + 1] == ARGV[i + 1]
  end
  if inOrder then
    redis.call('LTRIM', KEYS[1], 0, -(n + 1))
  else
    for i = 2, n + 1 do
      redis.call('LREM', KEYS[1], -1, ARGV[i])
    end
  end
end
if #ARGV > n + 1 then
  redis.call('HDEL', KEYS[2], unpack(ARGV, n + 2))
end
return redis.call('LLEN', KEYS[1])
