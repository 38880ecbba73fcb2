-- link_del: remove a device's link only if it still names this connection, so
-- that an older connection's late close never removes a newer one's entry.
-- KEYS[1] links hash
-- ARGV[1] device id, ARGV[2] "<gateway>#<conn>"
-- returns 1 if removed, else 0
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
