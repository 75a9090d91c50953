-- Decide whether this dispatch of a job may call the Gateway; if so claim it and reserve its
-- rate-limit slot, all in one round trip. (Uses keys.lua, ratelimit.lua, switches.lua,
-- templates.lua and pairs.lua.)
-- A function, begin(k, ARGV, looks), run by begin_job.lua for one dispatch and by sent.lua for
-- the next dispatch of a group once the one before it is settled; `k` holds its keys by name
-- (the caller passes them as KEYS, in the order of BEGIN_KEYS, generated from
-- worker/store/protocol.py), its body reads its arguments as ARGV, as the script it is, and it
-- shares what the script looked up in `looks` (see ratelimit.lua).
-- ARGV: id, gen, now_s, lease_s, execution, probe_interval_s, retention_s, then the job's
--       account, idempotency key and priority the keys were named for (checked against its
--       record), then the limits (see limits_from in ratelimit.lua), then pair_interval_ms (0: no
--       pair pacing), pair_burst (see pairs.lua), then floor ('1' only in the benchmarks' floor
--       what-if: no rate-limit slot and no pair is reserved, the call goes now)
-- Returns {verdict, detail, wait_ms[, job fields]}: for every verdict but stale and busy (the
-- caller counts each outcome under the job's account), the job's CLAIMED_FIELDS in their
-- order (generated from worker/store/protocol.py):
--   stale      another dispatch or a later state owns the job: drop this one
--   busy       a live execution holds the job or its key: drop (its lease brings it back)
--   duplicate  the key was already sent (detail: wamid); the job is marked sent
--   held       the account is halted, or its job's template held (detail: template_paused);
--              the job moved to the hold list, or to the template's held jobs
--   deferred   the rate-limit wait is longer than max_wait_ms (detail ''), or the recipient's
--              pair is not free (detail 'pair'; no rate-limit slot taken): the job went back on
--              the schedule for that long (wait_ms), no attempt used
--   lost       an execution died during its Gateway call: outcome unknown (job claimed)
--   expired    past expires_at (job claimed)
--   breaker    billing breaker open: park without calling (job claimed)
--   wait       billing breaker half-open, a probe is out: try again shortly (job claimed)
--   go         call the Gateway after wait_ms (detail '1' when this call is the breaker's
--              probe); the call is counted, the job marked calling. Asked again by the same
--              execution (a script retried after its reply was lost): the same answer and slot
local function begin(k, ARGV, looks)
local id, gen, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local lease_ms, execution = math.floor(tonumber(ARGV[4]) * 1000), ARGV[5]
local probe_ms = math.floor(tonumber(ARGV[6]) * 1000)
local retention_ms = math.max(1, math.floor(tonumber(ARGV[7]) * 1000))
local limits_of, max_wait_ms = limits_from(ARGV, 11)
local now_ms = math.floor(now * 1000)
local job = k.job
local member = id .. '|' .. gen
local leases = k.leases
local f = redis.call('HMGET', job, 'gen', 'state', 'to', 'pair', unpack(CLAIMED_FIELDS))
local field = {}
for i, name in ipairs(CLAIMED_FIELDS) do field[name] = f[i + 4] end
local state, account, key = f[2], field.account, field.key
if account and (account ~= ARGV[8] or key ~= ARGV[9] or (field.priority or '') ~= ARGV[10]) then
  return redis.error_reply('begin: job ' .. id .. "'s keys were named for another job")
end
-- Begun: no longer counted against the account's budget for dispatches (promote.lua).
if account then redis.call('ZREM', k.dispatched, member) end
if not f[1] or f[1] ~= gen or SETTLED_STATES[state] then
  -- Nothing may come of this dispatch: make sure it is not dispatched again.
  redis.call('ZREM', leases, member)
  return {'stale', '', 0}
end
local claim = k.claim
local history = k.history

local function event(name, code, action, delay_s)
  redis.call('RPUSH', history, cjson.encode({at = now, event = name, code = code or cjson.null,
    action = action or cjson.null, delay_s = delay_s or cjson.null}))
end

-- The reply with the job's fields (whether or not this dispatch claimed the job).
local function claimed(verdict, detail, wait_ms)
  local reply = {verdict, detail or '', wait_ms or 0}
  for _, name in ipairs(CLAIMED_FIELDS) do reply[#reply + 1] = field[name] or '' end
  return reply
end

local ledger = k.ledger
local held_by = redis.call('MGET', claim, ledger)
local holder = held_by[1]
if holder == execution and field.calling == '1' and redis.call('HGET', job, 'caller') == execution then
  -- This very execution was told to call already: a script run again after its reply was lost
  -- (the client retries on a timeout). The same answer again, with the slot it reserved.
  local slot_ms = redis.call('ZSCORE', k.sec_window,
    redis.call('HGET', job, 'slot') or '')
  local probe = redis.call('GET', k.breaker_probe) == execution and '1' or '0'
  -- As read before this execution counted its call.
  field.attempts = tostring((tonumber(field.attempts) or 1) - 1)
  return claimed('go', probe, math.max(0, math.ceil((tonumber(slot_ms) or now_ms) - now_ms)))
end
if holder then return {'busy', '', 0} end

local wamid = held_by[2]
if wamid then
  redis.call('HSET', job, 'state', JOB_STATE.SENT, 'wamid', wamid, 'calling', 0, 'updated_at', now)
  redis.call('ZREM', leases, member)
  event('duplicate', 'OK')
  retain(k, id, retention_ms)
  return claimed('duplicate', wamid)
end

local function take()
  redis.call('SET', claim, execution, 'PX', lease_ms)
  redis.call('ZADD', leases, now + lease_ms / 1000, member)
end

if state == JOB_STATE.SENDING and field.calling == '1' then
  take()
  return claimed('lost')
end

if field.expires_at ~= '' and tonumber(field.expires_at) <= now then
  take()
  return claimed('expired')
end

local halt = k.halt
local breaker = k.breaker
-- The switches and the cooldown in one look (unless this script has looked already): most of
-- the time none is set.
local template_holds = k.template_holds
if looks.quiet[account] == nil then
  looks.quiet[account] = redis.call('EXISTS', halt, breaker, k.cooldown,
    template_holds) == 0
end
local switched = not looks.quiet[account]
if switched and redis.call('EXISTS', halt) == 1 then
  hold_job(job, k.held, id, now)
  redis.call('ZREM', leases, member)
  event('held')
  return claimed('held')
end
if switched then
  local template = job_template(redis.call('HGET', job, 'template'), field.message)
  if template ~= '' and redis.call('HEXISTS', template_holds, template) == 1 then
    hold_for_template(job, k.template_held_jobs, template, id, now)
    redis.call('ZREM', leases, member)
    event('held', nil, 'template_paused')
    return claimed('held', 'template_paused')
  end
end

local probe = '0'
local probe_key = k.breaker_probe
if switched and redis.call('EXISTS', breaker) == 1 then
  local took = take_probe(breaker, probe_key, execution, probe_ms)
  if took ~= 'probe' then
    take()
    return claimed(took)  -- wait, or breaker
  end
  probe = '1'
end

local pair_interval_ms, floor = tonumber(ARGV[19]), ARGV[21] == '1'
local reserved, wait_ms, slot = true, 0, member .. '@' .. now_ms
local pairs_key, to, pair
if pair_interval_ms > 0 and not floor then
  to = pair_recipient(f[3], field.message)
  if to then
    pairs_key = k.pairs
    pair = pair_look(pairs_key, to, id, now_ms, pair_interval_ms, lease_ms, tonumber(ARGV[20]))
  end
end
local pair_wait_ms = pair and pair.wait_ms or 0
if pair_wait_ms == 0 and not floor then
  reserved, wait_ms, slot = reserve(k, account, now_ms, limits_of(account), max_wait_ms,
    member, looks)
end
if pair_wait_ms > 0 or not reserved then
  -- A long wait is spent on the schedule, not in a worker's memory; a wait for the pair takes
  -- no rate-limit slot, so the account's other recipients go out meanwhile.
  if pair_wait_ms > 0 then wait_ms = pair_wait_ms end
  if probe == '1' then redis.call('DEL', probe_key) end
  local next_gen = redis.call('HINCRBY', job, 'gen', 1)
  local due_at = now + wait_ms / 1000
  redis.call('HSET', job, 'state', JOB_STATE.SCHEDULED, 'updated_at', now, 'due_at', due_at)
  redis.call('ZREM', leases, member)
  schedule_in(k.due, k.scheduled_accounts, account, due_at, id .. '|' .. next_gen)
  event('wait', nil, pair_wait_ms > 0 and 'pair_wait' or 'rate_wait', wait_ms / 1000)
  return claimed('deferred', pair_wait_ms > 0 and 'pair' or '', wait_ms)
end
redis.call('SET', claim, execution, 'PX', lease_ms + wait_ms)
redis.call('ZADD', leases, now + (lease_ms + wait_ms) / 1000, member)
-- The slot's entry in the windows: a call that will not be made gives it back (recheck.lua).
-- The time as the caller's text, the flag as text: no number formatted (see sent.lua).
local attempts = (tonumber(field.attempts) or 0) + 1
if pair then
  -- The pair counts this call from now: its settlement confirms or gives it back (the job's
  -- field `pair` says which pair, and whether the reservation is alone in it: pairs.lua).
  pair_reserve(pairs_key, to, id, pair, now_ms + wait_ms, now_ms, pair_interval_ms, lease_ms,
    lease_ms + max_wait_ms + pair_interval_ms + 1000)
  local alone_until = tonumber(ARGV[20]) == 1 and now_ms + wait_ms + lease_ms or nil
  redis.call('HSET', job, 'state', JOB_STATE.SENDING, 'calling', '1', 'updated_at', ARGV[3], 'slot', slot,
    'caller', execution, 'attempts', attempts, 'pair', pair_field(to, alone_until))
else
  redis.call('HSET', job, 'state', JOB_STATE.SENDING, 'calling', '1', 'updated_at', ARGV[3], 'slot', slot,
    'caller', execution, 'attempts', attempts)
  -- An earlier paced call's field would have this call's settlement confirm a pair it never
  -- reserved (pacing turned off since, say).
  if f[4] then redis.call('HDEL', job, 'pair') end
end
return claimed('go', probe, wait_ms)
end
