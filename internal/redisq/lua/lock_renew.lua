-- lock_renew: extend a lock's lease, only while this holder still has it (a
-- lock that expired and was taken by another process stays theirs).
-- KEYS[1] the lock key
-- ARGV[1] holder token, ARGV[2] new lease in milliseconds
-- returns 1 if extended, 0 if the lock is gone or held by another
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
