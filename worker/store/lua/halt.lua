-- An operator halts an account: the halt appears whole, or, when the account is already halted
-- (by the Gateway's answer), it becomes the operator's, so it no longer ends by itself.
-- KEYS: the halt hash. ARGV: the channel its account is published on when it halts, the
-- account, then field, value, ... (with by = operator)
-- Returns 1 when this call halted the account, 0 when it was halted already.
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'by', 'operator')
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1
