-- Halt a claimed job's account and hold the job, atomically, and learn from the answer's
-- X-RateLimit headers. (Its parts from lib/ are included above, as protocol.py declares.)
-- ARGV: the settlement's twelve (settle.lua), code, halt_json ({code, reason, since})
-- Returns {recorded, halt_set}: recorded 0 when this execution no longer owned the job
-- (nothing written); halt_set 1 when this hold halted the account.
local s = settlement(ARGV, new_looks())
if not s or not release_owned(s) then return {0, 0} end
local prefix, account, now = s.prefix, s.account, s.now
local code, halt = ARGV[13], cjson.decode(ARGV[14])
local halt_key = keys.halt(prefix, account)
local opened = 0
if redis.call('EXISTS', halt_key) == 0 then
  redis.call('HSET', halt_key, 'code', halt.code, 'reason', halt.reason, 'since', halt.since)
  redis.call('PUBLISH', keys.switched(prefix), account)
  opened = 1
end
-- The call that met the halt does not count as an attempt.
if redis.call('HGET', s.job, 'calling') == '1' then redis.call('HINCRBY', s.job, 'attempts', -1) end
hold_job(s.job, keys.held(prefix, account), s.id, now, 'calling', 0, 'last_code', code)
count_answer(prefix, code, now)
remember(s)
return {1, opened}
