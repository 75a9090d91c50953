-- Record what became of one execution of a job, atomically, and learn from the answer's
-- X-RateLimit headers. (keys.lua, ratelimit.lua, delivery.lua and begin.lua are included above.)
-- ARGV: prefix, id, gen, now, execution, mode, event_json,
--       sec_window_ms, min_window_ms, sec_limit, sec_remaining, min_limit, min_remaining
--       ('' for headers that were absent), then by mode:
--   sent        wamid, retention_s[, begin.lua's ARGV for the group's next dispatch]
--   retry       delay_s, code, count ('reschedule'|'uncalled'|'other'), cooldown_until ('' or s)
--   park        code, reason, record_json, open_breaker ('0'|'1')
--   hold        code, halt_json
-- Returns 1 when recorded; 0 when this execution no longer owned the job (nothing written).
-- For `sent` also: the wamid is recorded whoever owns the job (the message went out), indexed
-- to the job for the delivery statuses (statuses that came first are applied now), and the
-- second value says whether a billing breaker was open (now closed), the third whether the
-- account has a retries_exhausted incident open (it may resolve now); then, when asked, the
-- next dispatch's begin reply (begin.lua's), in the same round trip. For `park` with a breaker,
-- the second value says whether this park opened it.
local prefix, id, gen, now, execution, mode = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local job = keys.job(prefix, id)
local f = redis.call('HMGET', job, 'gen', 'state', 'account', 'key', 'updated_at',
  'delivery_status', 'priority', 'key_owned')
if not f[1] then return {0, 0} end
local account, key = f[3], f[4]
local now_ms = math.floor(now * 1000)
local member = id .. '|' .. gen
learn(prefix, account, now_ms, {
  sec = {tonumber(ARGV[8]), tonumber(ARGV[10]), tonumber(ARGV[11])},
  min = {tonumber(ARGV[9]), tonumber(ARGV[12]), tonumber(ARGV[13])},
}, member)
local claim = keys.claim(prefix, account, key)
local settled = f[2] == 'sent' or f[2] == 'parked' or f[2] == 'held'

local function release(holder)
  if holder == execution then redis.call('DEL', claim) end
  redis.call('ZREM', keys.leases(prefix), member)
end

local function remember()
  redis.call('RPUSH', keys.history(prefix, id), ARGV[7])
end

if mode == 'sent' then
  local began = tonumber(f[5] or '') or 0  -- set by begin
  -- Times as the caller's text, flags as text: a Lua number in a command is formatted with
  -- printf, which costs more than the command (bench/scripts.py); the retention formatted once.
  redis.call('HSET', job, 'state', 'sent', 'wamid', ARGV[14], 'last_code', 'OK', 'calling', '0',
    'updated_at', ARGV[4], 'sent_at', ARGV[4])
  -- The claim goes whoever holds it: with the ledger written, no begin lets the key be called
  -- again, and a call already past its begin is not stopped by a claim.
  if f[1] == gen then
    redis.call('DEL', claim)
    redis.call('ZREM', keys.leases(prefix), member)
  end
  remember()
  local retention_ms = string.format('%d', math.max(1, math.floor(tonumber(ARGV[15]) * 1000)))
  retain(prefix, id, account, key, retention_ms, ARGV[14], f[8])
  if f[6] then redis.call('HDEL', job, 'delivery_status', 'delivery_at', 'delivery_error') end
  redis.call('SET', keys.wamid(prefix, ARGV[14]), id, 'PX', retention_ms)
  -- Sends per second, for `msgworker status` (a bucket per second, kept two minutes).
  local bucket = keys.sent_in_second(prefix, math.floor(now))
  if redis.call('INCR', bucket) == 1 then redis.call('EXPIRE', bucket, 120) end
  local breaker = keys.breaker(prefix, account)
  local exhausted = keys.incident(prefix, 'retries_exhausted', account)
  local early = keys.early_statuses(prefix, ARGV[14])
  local reply = {1, 0, 0}
  -- One look at the account's halt, breaker, cooldown and retries_exhausted incident, and at
  -- the statuses that came before this send was recorded: most of the time none is there, and
  -- the next job's begin, of the same account, need not look again.
  local found = redis.call('EXISTS', keys.halt(prefix, account), breaker,
    keys.cooldown(prefix, account), exhausted, early)
  if found > 0 then
    local statuses = redis.call('LRANGE', early, 0, -1)
    for _, raw in ipairs(statuses) do
      apply_delivery(prefix, id, cjson.decode(raw), now)
    end
    if #statuses > 0 then
      redis.call('DEL', early)
      redis.call('ZREM', keys.early_arrivals(prefix), ARGV[14])
      found = found - 1
    end
  end
  quiet_now[account] = found == 0
  if not quiet_now[account] then
    local probe_key = keys.breaker_probe(prefix, account)
    local since = tonumber(redis.call('HGET', breaker, 'since') or '')
    -- Only a call made after the breaker opened (the probe) says the balance is back: a call
    -- made before, settled late, must not close it (and reopen it, alerting twice). No breaker,
    -- nothing to close: its probe is only ever set while it is open, and deleted with it.
    if since and (began >= since or redis.call('GET', probe_key) == execution) then
      reply[2] = redis.call('DEL', breaker, probe_key) > 0 and 1 or 0
    end
    reply[3] = redis.call('EXISTS', exhausted)
    quiet_now[account] = nil  -- the breaker may have closed: the next begin looks for itself
  end
  if ARGV[16] then
    for _, part in ipairs(begin({unpack(ARGV, 16)})) do reply[#reply + 1] = part end
  end
  return reply
end

local holder = redis.call('GET', claim)
local owns = f[1] == gen and not settled and holder == execution
if not owns then return {0, 0} end

if mode == 'retry' then
  local delay, code, count, cooldown = tonumber(ARGV[14]), ARGV[15], ARGV[16], ARGV[17]
  release(holder)
  local next_gen = redis.call('HINCRBY', job, 'gen', 1)
  local state = delay > 0 and 'scheduled' or 'queued'
  if code ~= '' then redis.call('HSET', job, 'last_code', code) end
  if count == 'reschedule' then
    -- A RATE_001 answer does not use up an attempt: it has its own cap.
    redis.call('HINCRBY', job, 'reschedules', 1)
    if redis.call('HGET', job, 'calling') == '1' then redis.call('HINCRBY', job, 'attempts', -1) end
  elseif count == 'uncalled' then
    -- begin counted a call that was not made (the replicas were behind): no attempt, no
    -- reschedule, its rate-limit slot and any breaker probe it held given back.
    give_back_call(job, keys.window(prefix, account, 'sec'), keys.window(prefix, account, 'min'))
    local probe = keys.breaker_probe(prefix, account)
    if redis.call('GET', probe) == execution then redis.call('DEL', probe) end
  end
  redis.call('HSET', job, 'state', state, 'calling', 0, 'updated_at', now, 'due_at', now + delay)
  schedule(prefix, account, f[7], now + delay, id .. '|' .. next_gen)
  if cooldown ~= '' then
    local cooldown_key = keys.cooldown(prefix, account)
    local current = tonumber(redis.call('GET', cooldown_key) or '0')
    local until_ms = math.floor(tonumber(cooldown) * 1000)
    if until_ms > current then
      redis.call('SET', cooldown_key, until_ms, 'PX', math.max(1, until_ms - math.floor(now * 1000)))
      redis.call('PUBLISH', keys.switched(prefix), account)
    end
  end
  remember()
  return {1, 0}
end

if mode == 'park' then
  local code, reason, record, open_breaker = ARGV[14], ARGV[15], ARGV[16], ARGV[17]
  release(holder)
  redis.call('HSET', job, 'state', 'parked', 'calling', 0, 'last_code', code,
    'parked_reason', reason, 'updated_at', now)
  redis.call('SET', keys.dead_letter(prefix, id), record)
  redis.call('ZADD', keys.dead_letter_index(prefix), now, id)
  redis.call('HINCRBY', keys.dead_letter_counts(prefix), code, 1)
  remember()
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
end

if mode == 'hold' then
  local code, halt = ARGV[14], cjson.decode(ARGV[15])
  release(holder)
  local halt_key = keys.halt(prefix, account)
  local opened = 0
  if redis.call('EXISTS', halt_key) == 0 then
    redis.call('HSET', halt_key, 'code', halt.code, 'reason', halt.reason, 'since', halt.since)
    redis.call('PUBLISH', keys.switched(prefix), account)
    opened = 1
  end
  redis.call('HINCRBY', job, 'gen', 1)
  -- The call that met the halt does not count as an attempt.
  if redis.call('HGET', job, 'calling') == '1' then redis.call('HINCRBY', job, 'attempts', -1) end
  redis.call('HSET', job, 'state', 'held', 'calling', 0, 'last_code', code, 'updated_at', now)
  redis.call('RPUSH', keys.held(prefix, account), id)
  remember()
  return {1, opened}
end

return redis.error_reply('finish.lua: unknown mode ' .. tostring(mode))
