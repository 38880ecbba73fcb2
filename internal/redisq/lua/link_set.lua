-- link_set: record which gateway connection holds a device.
-- KEYS[1] links hash
-- ARGV[1] device id, ARGV[2] "<gateway>#<conn>"
-- returns the previous value (a connection to close) or false
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return old
