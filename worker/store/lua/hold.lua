-- Halt a claimed job's account and hold the job, atomically, and learn from the answer's
-- X-RateLimit headers. (Its parts from lib/ are included above, as protocol.py declares.)
-- KEYS: the settlement's (settle.lua), halt, held
-- ARGV: the settlement's fifteen (settle.lua), code, halt_json ({code, reason, since}),
--   channel (where a new halt is announced)
-- Returns {recorded, halt_set}: recorded 0 when this execution no longer owned the job
-- (nothing written); halt_set 1 when this hold halted the account.
local k = named_keys(SCRIPT_KEYS, 1)
local s = settlement(k, ARGV, new_looks())
if not s or not release_owned(s) then return {0, 0} end
local account, now = s.account, s.now
local code, halt = ARGV[16], cjson.decode(ARGV[17])
local opened = 0
if redis.call('EXISTS', k.halt) == 0 then
  redis.call('HSET', k.halt, 'code', halt.code, 'reason', halt.reason, 'since', halt.since)
  redis.call('PUBLISH', ARGV[18], account)
  opened = 1
end
-- The call that met the halt does not count as an attempt.
if redis.call('HGET', s.job, 'calling') == '1' then redis.call('HINCRBY', s.job, 'attempts', -1) end
hold_job(s.job, k.held, s.id, now, 'calling', 0, 'last_code', code)
count_answer(k.answers, code)
remember(s)
return {1, opened}
