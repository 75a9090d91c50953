-- Move a claimed job to the dead-letter queue, atomically, and learn from the answer's
-- X-RateLimit headers. (Its parts from lib/ are included above, as protocol.py declares.)
-- KEYS: the settlement's (settle.lua), dead_letter, dead_letter_index, dead_letter_counts,
--   breaker
-- ARGV: the settlement's fifteen (settle.lua), code, reason, record_json,
--   open_breaker ('0'|'1'), channel (where a breaker newly open is announced)
-- Returns {recorded, breaker_opened}: recorded 0 when this execution no longer owned the job
-- (nothing written); breaker_opened 1 when this park opened the account's billing breaker.
local k = named_keys(SCRIPT_KEYS, 1)
local s = settlement(k, ARGV, new_looks())
if not s or not release_owned(s) then return {0, 0} end
local account, now = s.account, s.now
local code, reason, record, open_breaker = ARGV[16], ARGV[17], ARGV[18], ARGV[19]
redis.call('HSET', s.job, 'state', JOB_STATE.PARKED, 'calling', 0, 'last_code', code,
  'parked_reason', reason, 'updated_at', now)
write_dead_letter(k, s.id, record, code, now)
count_answer(k.answers, code)
remember(s)
local opened = 0
if open_breaker == '1' then
  opened = redis.call('HSETNX', k.breaker, 'since', now)
  if opened == 1 then
    redis.call('HSET', k.breaker, 'code', code)
    redis.call('PUBLISH', ARGV[20], account)
  end
  -- A failed probe: the next one waits a whole probe interval; the half-open wait ends.
  redis.call('HDEL', k.breaker, 'half_open')
end
return {1, opened}
