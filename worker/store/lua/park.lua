-- Move a claimed job to the dead-letter queue, atomically, and learn from the answer's
-- X-RateLimit headers. (Its parts from lib/ are included above, as protocol.py declares.)
-- ARGV: the settlement's twelve (settle.lua), code, reason, record_json,
--   open_breaker ('0'|'1')
-- Returns {recorded, breaker_opened}: recorded 0 when this execution no longer owned the job
-- (nothing written); breaker_opened 1 when this park opened the account's billing breaker.
local s = settlement(ARGV, new_looks())
if not s or not release_owned(s) then return {0, 0} end
local prefix, account, now = s.prefix, s.account, s.now
local code, reason, record, open_breaker = ARGV[13], ARGV[14], ARGV[15], ARGV[16]
redis.call('HSET', s.job, 'state', JOB_STATE.PARKED, 'calling', 0, 'last_code', code,
  'parked_reason', reason, 'updated_at', now)
write_dead_letter(prefix, s.id, record, code, now)
count_answer(prefix, code, now)
remember(s)
local opened = 0
if open_breaker == '1' then
  local breaker = keys.breaker(prefix, account)
  opened = redis.call('HSETNX', breaker, 'since', now)
  if opened == 1 then
    redis.call('HSET', breaker, 'code', code)
    redis.call('PUBLISH', keys.switched(prefix), account)
  end
  -- A failed probe: the next one waits a whole probe interval; the half-open wait ends.
  redis.call('HDEL', breaker, 'half_open')
end
return {1, opened}
