-- take_more: move up to N of the oldest items of the ingest list into a
-- worker's processing list, beside what it already holds, and hand over only
-- those: the next batch, taken while the one in hand is being stored. Unlike
-- take it hands over nothing the list held before (that is the batch in
-- hand); a worker calls take whenever it has nothing in hand, which hands
-- over whatever a lost answer left there.
-- KEYS[1] ingest list, KEYS[2] processing list, KEYS[3] workers set
-- ARGV[1] N, ARGV[2] worker id
-- returns the items, oldest first (empty when the ingest list is empty)
redis.call('SADD', KEYS[3], ARGV[2])
local items = redis.call('RPOP', KEYS[1], tonumber(ARGV[1]))
if not items then
  return {}
end
redis.call('LPUSH', KEYS[2], unpack(items))
return items
