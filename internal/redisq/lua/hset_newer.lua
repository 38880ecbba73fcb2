-- hset_newer: set hash fields only where the new value is newer than the
-- stored one, so that a late or replayed item never moves a device's last
-- position or last-seen time backwards.
-- KEYS[1] hash
-- ARGV[1] how the stored value tells its time: "number" (the value is the
--         time) or "json" (the value is JSON with a numeric "ts")
-- ARGV[2..] triples: field, time (number), value
-- returns the number of fields set
local n = 0
for i = 2, #ARGV, 3 do
  local field, t, value = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local cur = redis.call('HGET', KEYS[1], field)
  local curT = nil
  if cur then
    if ARGV[1] == 'number' then
      curT = tonumber(cur)
    else
      local ok, obj = pcall(cjson.decode, cur)
      if ok and type(obj) == 'table' then
        curT = tonumber(obj.ts)
      end
    end
  end
  if curT == nil or t >= curT then
    redis.call('HSET', KEYS[1], field, value)
    n = n + 1
  end
end
return n
