-- take: hand a worker everything its processing list holds, topped up with
-- the oldest items of the ingest list, up to N in all.
-- A worker calls take only with nothing in hand, so whatever its processing
-- list already holds was left there by a call whose answer never arrived (a
-- take or blocking move that Redis ran after the worker gave up on it, a
-- finish that failed): those items are handed over again first, before any
-- new one, so that nothing sits in a processing list unseen.
-- KEYS[1] ingest list, KEYS[2] processing list, KEYS[3] workers set
-- ARGV[1] N, ARGV[2] worker id, ARGV[3] M: the list is topped up to at most
-- M items (or N if less), so that one call moves a bounded number (every
-- other client waits for a script to end, and unpack passes at most about
-- 8,000 values); the caller takes the rest with take_more, which is right
-- only when this call handed over the whole list: when it handed over at
-- least M items and fewer than N
-- returns the items, oldest first (empty when both lists are empty)
local max = tonumber(ARGV[1])
local move = math.min(max, tonumber(ARGV[3]))
-- A worker that holds items is always in the workers set, so that its list
-- is recovered if it dies, even if its heartbeat lapsed during a stall.
redis.call('SADD', KEYS[3], ARGV[2])
local held = redis.call('LLEN', KEYS[2])
if held == 0 then
  -- The usual case: nothing left over; RPOP hands the oldest first.
  local items = redis.call('RPOP', KEYS[1], move)
  if not items then
    return {}
  end
  redis.call('LPUSH', KEYS[2], unpack(items))
  return items
end
if held < move then
  local items = redis.call('RPOP', KEYS[1], move - held)
  if items then
    redis.call('LPUSH', KEYS[2], unpack(items))
  end
end
-- The processing list holds the newest at its head: its last max entries are
-- the oldest; hand them over oldest first.
local out = redis.call('LRANGE', KEYS[2], -max, -1)
local n = #out
for i = 1, math.floor(n / 2) do
  out[i], out[n - i + 1] = out[n - i + 1], out[i]
end
return out
