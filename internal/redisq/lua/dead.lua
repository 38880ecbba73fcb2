-- dead: move one item from a worker's processing list to the dead-letter list.
-- KEYS[1] processing list, KEYS[2] dead-letter list, KEYS[3] attempts hash
-- ARGV[1] the raw item, ARGV[2] the dead-letter entry (JSON), ARGV[3] its attempt key
-- returns 1 if the item was in the processing list, else 0 (the entry is added anyway)
local n = redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[3])
return n
