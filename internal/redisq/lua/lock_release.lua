-- lock_release: delete a lock only if this holder still has it, so that a
-- holder whose lease ran out never removes the lock of the one after it.
-- KEYS[1] the lock key
-- ARGV[1] holder token
-- returns 1 if removed, 0 if the lock is gone or held by another
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
