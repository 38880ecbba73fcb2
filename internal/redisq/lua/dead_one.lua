-- dead_one: requeue or delete the one dead letter whose entry has the given
-- SHA-1 (DeadLetter.ID), so that an operator can act on a single letter
-- without touching the others.
-- KEYS[1] dead-letter list, KEYS[2] ingest list, KEYS[3] attempts hash
-- ARGV[1] the entry's SHA-1 (hex), ARGV[2] 'requeue' or 'delete'
-- returns 1 when the letter was found and handled, 0 when it is not there
-- (handled already, or requeued by another admin)
local entries = redis.call('LRANGE', KEYS[1], 0, -1)
for _, entry in ipairs(entries) do
  if redis.sha1hex(entry) == ARGV[1] then
    if ARGV[2] == 'requeue' then
      local ok, obj = pcall(cjson.decode, entry)
      if not (ok and type(obj) == 'table' and type(obj.item) == 'string') then
        -- Not a letter that can go back: it stays where it is.
        return redis.error_reply('dead-letter entry does not decode; delete it instead')
      end
      redis.call('LPUSH', KEYS[2], obj.item)
      if type(obj.key) == 'string' then
        redis.call('HDEL', KEYS[3], obj.key)
      end
    end
    redis.call('LREM', KEYS[1], 1, entry)
    return 1
  end
end
return 0
