-- outage_clear: remove the store outage report only if this worker made it,
-- so that one worker writing again does not hide another's outage.
-- KEYS[1] the outage report key
-- ARGV[1] worker id
-- returns 1 if removed, else 0
local v = redis.call('GET', KEYS[1])
if not v then
  return 0
end
local ok, obj = pcall(cjson.decode, v)
if ok and type(obj) == 'table' and obj.worker == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
