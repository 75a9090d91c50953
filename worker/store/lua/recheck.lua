-- A fresh look at the account's switches after a delivery waited for its rate-limit slot:
-- a halt, a cooldown or an open billing breaker that arrived during the wait stops the call.
-- KEYS: job, history, claim, leases, halt, held, cooldown, breaker, breaker_probe, sec_window,
--       min_window, due (the job's lane), scheduled_accounts (the last two: where a cooldown's
--       wait schedules the job), pairs (the account's, where a call not made gives its pair back)
-- ARGV: id, gen, now_s, execution, event_held_json, event_wait_json (its delay_s is filled in),
--       probe_interval_s, account
-- Returns {verdict, wait_ms}:
--   go        nothing changed: call the Gateway
--   stale     this execution no longer owns the job: do nothing
--   held      the account was halted: the job moved to the hold list, no attempt used
--   deferred  a cooldown began: the job went back on the schedule until it ends (wait_ms)
--   breaker   the billing breaker opened and its probe is out: park without calling (the
--             job stays claimed); when no probe is out, this call becomes the probe (go)
--   wait      the breaker is half-open and its probe is out: try again shortly (job claimed)
local job, history, claim, leases = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local halt, held, cooldown, breaker, probe = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local sec_window, min_window, due, scheduled_accounts = KEYS[10], KEYS[11], KEYS[12], KEYS[13]
local pairs_key = KEYS[14]
local id, gen, now, execution = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local member = id .. '|' .. gen
local now_ms = math.floor(now * 1000)

if redis.call('GET', claim) ~= execution or redis.call('HGET', job, 'gen') ~= gen then
  return {'stale', 0}
end

local function uncount()
  give_back_call(job, sec_window, min_window)
  pair_give_back(job, pairs_key, id)
end

local function release()
  redis.call('DEL', claim)
  drop_probe(probe, execution)
  redis.call('ZREM', leases, member)
end

if redis.call('EXISTS', halt) == 1 then
  uncount()
  release()
  hold_job(job, held, id, now)
  redis.call('RPUSH', history, ARGV[5])
  return {'held', 0}
end

local until_ms = tonumber(redis.call('GET', cooldown) or '0')
if until_ms > now_ms then
  uncount()
  release()
  local next_gen = redis.call('HINCRBY', job, 'gen', 1)
  local due_at = until_ms / 1000
  redis.call('HSET', job, 'state', JOB_STATE.SCHEDULED, 'updated_at', now, 'due_at', due_at)
  schedule_in(due, scheduled_accounts, ARGV[8], due_at, id .. '|' .. next_gen)
  local event = cjson.decode(ARGV[6])
  event.delay_s = (until_ms - now_ms) / 1000
  redis.call('RPUSH', history, cjson.encode(event))
  return {'deferred', until_ms - now_ms}
end

if redis.call('EXISTS', breaker) == 1 and redis.call('GET', probe) ~= execution then
  local took = take_probe(breaker, probe, execution, math.floor(tonumber(ARGV[7]) * 1000))
  if took == 'probe' then return {'go', 0} end
  uncount()
  return {took, 0}  -- wait, or breaker
end
return {'go', 0}
