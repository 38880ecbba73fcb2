-- requeue: move up to N dead letters (oldest first) back onto the ingest list
-- with a fresh attempt count.
-- KEYS[1] dead-letter list, KEYS[2] ingest list, KEYS[3] attempts hash
-- ARGV[1] N; 0 or less: all of them
-- returns the number requeued; entries that do not decode are left alone
local max = tonumber(ARGV[1])
if max <= 0 then
  max = redis.call('LLEN', KEYS[1])
end
local n = 0
for i = 1, max do
  local entry = redis.call('RPOP', KEYS[1])
  if not entry then
    break
  end
  local ok, obj = pcall(cjson.decode, entry)
  if ok and type(obj) == 'table' and type(obj.item) == 'string' then
    redis.call('LPUSH', KEYS[2], obj.item)
    if type(obj.key) == 'string' then
      redis.call('HDEL', KEYS[3], obj.key)
    end
    n = n + 1
  else
    redis.call('LPUSH', KEYS[1], entry)
    break
  end
end
return n
