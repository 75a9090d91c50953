-- Put a claimed job back on the schedule after a delay, atomically, and learn from the answer's
-- X-RateLimit headers. (Its parts from lib/ are included above, as protocol.py declares.)
-- KEYS: the settlement's (settle.lua), breaker_probe, cooldown, due (the job's lane),
--   scheduled_accounts
-- ARGV: the settlement's fifteen (settle.lua), delay_s, code ('' for none),
--   count ('reschedule'|'uncalled'|'other'), cooldown_until ('' or s), channel (where a new
--   cooldown is announced)
-- Returns {recorded}: 0 when this execution no longer owned the job (nothing written).
local k = named_keys(SCRIPT_KEYS, 1)
local s = settlement(k, ARGV, new_looks())
if not s or not release_owned(s) then return {0} end
local account, now = s.account, s.now
local delay, code, count, cooldown = tonumber(ARGV[16]), ARGV[17], ARGV[18], ARGV[19]
local next_gen = redis.call('HINCRBY', s.job, 'gen', 1)
local state = delay > 0 and JOB_STATE.SCHEDULED or JOB_STATE.QUEUED
if code ~= '' then
  redis.call('HSET', s.job, 'last_code', code)
  count_answer(k.answers, code)
end
if count == 'reschedule' then
  -- A RATE_001 answer does not use up an attempt: it has its own cap.
  redis.call('HINCRBY', s.job, 'reschedules', 1)
  if redis.call('HGET', s.job, 'calling') == '1' then
    redis.call('HINCRBY', s.job, 'attempts', -1)
  end
elseif count == 'uncalled' then
  -- begin counted a call that was not made (the replicas were behind): no attempt, no
  -- reschedule, its rate-limit slot and any breaker probe it held given back.
  give_back_call(s.job, k.sec_window, k.min_window)
  drop_probe(k.breaker_probe, s.execution)
end
redis.call('HSET', s.job, 'state', state, 'calling', 0, 'updated_at', now, 'due_at', now + delay)
schedule_in(k.due, k.scheduled_accounts, account, now + delay, s.id .. '|' .. next_gen)
if cooldown ~= '' then
  local current = tonumber(redis.call('GET', k.cooldown) or '0')
  local until_ms = math.floor(tonumber(cooldown) * 1000)
  if until_ms > current then
    redis.call('SET', k.cooldown, until_ms, 'PX', math.max(1, until_ms - s.now_ms))
    redis.call('PUBLISH', ARGV[20], account)
  end
end
remember(s)
return {1}
