-- take: move up to N items from the tail of the ingest list (the oldest) to the
-- head of a worker's processing list, atomically.
-- KEYS[1] ingest list, KEYS[2] processing list
-- ARGV[1] N
-- returns the items, oldest first (empty when the list is empty)
local items = redis.call('RPOP', KEYS[1], ARGV[1])
if not items then
  return {}
end
redis.call('LPUSH', KEYS[2], unpack(items))
return items
