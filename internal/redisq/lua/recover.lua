-- recover: give the in-flight items of a dead worker back to the ingest list.
-- Each recovered item counts one failed attempt, so that an item that crashes
-- every worker ends up in the dead-letter list instead of looping forever.
-- KEYS[1] the worker's heartbeat key, KEYS[2] its processing list,
-- KEYS[3] ingest list, KEYS[4] attempts hash, KEYS[5] workers set
-- ARGV[1] worker id
-- ARGV[2] "1" to skip the heartbeat check (a worker recovering its own list)
-- ARGV[3] "1" to count an attempt for each item
-- ARGV[4] N: one call moves at most the N newest items (every other client
-- waits for a script to end); the caller calls again while a call moves N,
-- and the call that moves fewer removes the worker from the set
-- returns the number of items recovered, or -1 when the worker is alive
if ARGV[2] ~= '1' and redis.call('EXISTS', KEYS[1]) == 1 then
  return -1
end
local n = tonumber(ARGV[4])
local items = redis.call('LRANGE', KEYS[2], 0, n - 1)
-- The processing list holds the newest at its head; push the oldest last so
-- that it sits at the tail of the ingest list and is taken first (the next
-- call's items are older still, and go behind these).
for i = 1, #items do
  local item = items[i]
  if ARGV[3] == '1' then
    local ok, obj = pcall(cjson.decode, item)
    local key
    if ok and type(obj) == 'table' and type(obj.device) == 'string' and type(obj.id) == 'string'
        and obj.device ~= '' and obj.id ~= '' then
      key = obj.device .. '\n' .. obj.id
    else
      key = redis.sha1hex(item)
    end
    redis.call('HINCRBY', KEYS[4], key, 1)
  end
  redis.call('RPUSH', KEYS[3], item)
end
if #items == n then
  redis.call('LTRIM', KEYS[2], n, -1)
  return n
end
redis.call('DEL', KEYS[2])
if ARGV[2] ~= '1' then
  redis.call('SREM', KEYS[5], ARGV[1])
end
return #items
