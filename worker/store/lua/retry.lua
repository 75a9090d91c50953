-- Put a claimed job back on the schedule after a delay, atomically, and learn from the answer's
-- X-RateLimit headers. (Its parts from lib/ are included above, as protocol.py declares.)
-- ARGV: the settlement's twelve (settle.lua), delay_s, code ('' for none),
--   count ('reschedule'|'uncalled'|'other'), cooldown_until ('' or s)
-- Returns {recorded}: 0 when this execution no longer owned the job (nothing written).
local s = settlement(ARGV, new_looks())
if not s or not release_owned(s) then return {0} end
local prefix, account, now = s.prefix, s.account, s.now
local delay, code, count, cooldown = tonumber(ARGV[13]), ARGV[14], ARGV[15], ARGV[16]
local next_gen = redis.call('HINCRBY', s.job, 'gen', 1)
local state = delay > 0 and JOB_STATE.SCHEDULED or JOB_STATE.QUEUED
if code ~= '' then
  redis.call('HSET', s.job, 'last_code', code)
  count_answer(prefix, code, now)
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
  give_back_call(s.job, keys.window(prefix, account, 'sec'), keys.window(prefix, account, 'min'))
  drop_probe(keys.breaker_probe(prefix, account), s.execution)
end
redis.call('HSET', s.job, 'state', state, 'calling', 0, 'updated_at', now, 'due_at', now + delay)
schedule(prefix, account, s.priority, now + delay, s.id .. '|' .. next_gen)
if cooldown ~= '' then
  local cooldown_key = keys.cooldown(prefix, account)
  local current = tonumber(redis.call('GET', cooldown_key) or '0')
  local until_ms = math.floor(tonumber(cooldown) * 1000)
  if until_ms > current then
    redis.call('SET', cooldown_key, until_ms, 'PX', math.max(1, until_ms - s.now_ms))
    redis.call('PUBLISH', keys.switched(prefix), account)
  end
end
remember(s)
return {1}
