-- The account's rate limiter, included at the top of begin_job.lua, the settlements and the pump's
-- scripts (plan.lua, promote.lua).
-- Two sliding windows (sec, min) per account are logs of call slots (sorted sets by time, in
-- ms). A slot is handed out in time order, evenly spaced after the last one, where both windows
-- allow it; so waiting workers line up instead of polling, and the limit is used fully. Once a
-- call is answered its entry in the sec window moves to where it reached the Gateway (arrived).

-- The limits in force: what the Gateway announced, else where the limiter starts; never above
-- the ceilings (the configured limits). A stored value below 1 is not a limit: ignored.
-- What one run of a script has looked up already, handed from part to part explicitly (each
-- entry script makes one): `learned`, the learned limits read or written (by key), so that
-- sent.lua's learn, then its begin for the next job, look them up once; `quiet`, the accounts
-- seen with no halt, no billing breaker and no cooldown (by account), so that sent.lua's look
-- after a send, then its begin for the next job of the same account, and the limiter, ask Redis
-- once. Nothing in between sets one of them.
local function new_looks()
  return {learned = {}, quiet = {}}
end

-- The call begin counted will not be made: its attempt and its rate-limit slot are given back
-- (a slot left in the windows would keep the next calls waiting for a call that never came).
local function give_back_call(job, sec_window, min_window)
  if redis.call('HGET', job, 'calling') == '1' then redis.call('HINCRBY', job, 'attempts', -1) end
  redis.call('HSET', job, 'calling', 0)
  local slot = redis.call('HGET', job, 'slot')
  if slot then
    redis.call('ZREM', sec_window, slot)
    redis.call('ZREM', min_window, slot)
    redis.call('HDEL', job, 'slot')
  end
end

-- An account's limiter keys, as the functions below take them (`rk`): the learned limits, the
-- two windows, the cooldown and the dispatches not begun yet; named from a prefix, for the
-- scripts that still name keys so (a begin takes them as KEYS, by the same names).
local function rate_keys(prefix, account)
  return {limits = keys.limits(prefix, account), sec_window = keys.window(prefix, account, 'sec'),
    min_window = keys.window(prefix, account, 'min'), cooldown = keys.cooldown(prefix, account),
    dispatched = keys.dispatched(prefix, account)}
end

local function rate_limits(limits_key, limits, looks)
  local learned = looks.learned[limits_key] or redis.call('HMGET', limits_key, 'sec', 'min')
  local sec, min = tonumber(learned[1]), tonumber(learned[2])
  if not sec or sec < 1 then sec = limits.sec end
  if not min or min < 1 then min = limits.min end
  return math.floor(math.min(sec, limits.sec_ceiling)), math.floor(math.min(min, limits.min_ceiling))
end

-- The earliest slot (ms) both windows and the cooldown allow, the limits in force, and the
-- sec window's last entry (score, member; nil when empty). Entries older than a window may still
-- be in it (trimming is periodic, see reserve): they change nothing here, as the k-th newest
-- entry is older than the window only when fewer than k entries are inside it.
local function earliest_slot(rk, account, now_ms, limits, looks)
  local sec_limit, min_limit = rate_limits(rk.limits, limits, looks)
  local sec, min = rk.sec_window, rk.min_window
  local slot = now_ms
  if not looks.quiet[account] then
    slot = math.max(slot, tonumber(redis.call('GET', rk.cooldown) or '0'))
  end
  -- Slots are evenly spaced (window / limit apart), never bunched: a burst of calls reaches the
  -- Gateway spread out, so the jitter of their arrival cannot tip a window over its limit.
  local last = redis.call('ZRANGE', sec, '-1', '-1', 'WITHSCORES')
  local last_at = tonumber(last[2])
  if last_at then slot = math.max(slot, last_at + limits.sec_window / sec_limit) end
  for _, w in ipairs({{sec, sec_limit, limits.sec_window}, {min, min_limit, limits.min_window}}) do
    local kth = redis.call('ZRANGE', w[1], -w[2], -w[2], 'WITHSCORES')
    if kth[2] then slot = math.max(slot, tonumber(kth[2]) + w[3]) end
  end
  return slot, sec_limit, min_limit, last_at, last[1]
end

local SEEN = 'seen:'  -- the prefix of the entries learn adds for calls made by someone else

-- The slot (ms) a call's window entry (owner@slot) was reserved for, whatever its score now (see
-- arrived); nil for an entry of learn's.
local function reserved_slot(entry)
  return tonumber(string.match(entry, '@([^@]+)$'))
end

-- The earliest slot; reserved for `owner` (the dispatch's member) when within max_wait_ms.
-- Returns (reserved, wait_ms[, entry]): the entry is owner@slot, unique in the windows as each
-- slot lies after every entry of the sec window.
-- Upkeep (trimming both windows and setting their expiry) is done for the first slot of each
-- second, not for every slot: a window's expiry, set then to outlast that slot by its window
-- and a second, outlasts every later slot of the same second. Whether the slot is its second's
-- first is told by the slot the last entry was reserved for (a call's entry may have moved on
-- to its arrival since). A second that begins with an entry of learn's (its expiry is its own)
-- or with no entry gets its upkeep at its next slot.
local function reserve(rk, account, now_ms, limits, max_wait_ms, owner, looks)
  local slot, _, _, last_at, last_entry = earliest_slot(rk, account, now_ms, limits, looks)
  local wait = math.ceil(slot - now_ms)
  if wait > max_wait_ms then return false, wait end
  local sec, min = rk.sec_window, rk.min_window
  local entry = owner .. '@' .. slot
  redis.call('ZADD', sec, slot, entry)
  redis.call('ZADD', min, slot, entry)
  local last_slot = last_at and reserved_slot(last_entry)
  if not last_slot or math.floor(last_slot / 1000) ~= math.floor(slot / 1000) then
    redis.call('ZREMRANGEBYSCORE', sec, '-inf', now_ms - limits.sec_window)
    redis.call('ZREMRANGEBYSCORE', min, '-inf', now_ms - limits.min_window)
    redis.call('PEXPIRE', sec, limits.sec_window + wait + 2000)
    redis.call('PEXPIRE', min, limits.min_window + wait + 2000)
  end
  return true, wait, entry
end

-- The limits begin.lua and the pump's scripts take, from ARGV[first..first+7]: sec, min,
-- sec_window, min_window, max_wait, sec_ceiling, min_ceiling and the JSON of the accounts with
-- limits of their own ({account: [sec, min, sec_ceiling, min_ceiling]}, '' for none). Returns a
-- function, account -> its limits, and max_wait (ms).
local function limits_from(argv, first)
  local defaults = {
    sec = tonumber(argv[first]), min = tonumber(argv[first + 1]),
    sec_window = tonumber(argv[first + 2]), min_window = tonumber(argv[first + 3]),
    sec_ceiling = tonumber(argv[first + 5]), min_ceiling = tonumber(argv[first + 6]),
  }
  local own = argv[first + 7] ~= '' and cjson.decode(argv[first + 7]) or {}
  return function(account)
    local mine = own[account]
    if not mine then return defaults end
    return {sec = mine[1], min = mine[2], sec_ceiling = mine[3], min_ceiling = mine[4],
      sec_window = defaults.sec_window, min_window = defaults.min_window}
  end, tonumber(argv[first + 4])
end

-- How many more dispatches of the account its limiter can take within horizon_ms: the slots
-- from the earliest free one to the horizon, evenly spaced as reserve hands them out, less the
-- dispatches not yet begun (each will take one), never past what the minute window has left.
-- A dispatch not begun by its entry's score (s) stops counting: it was lost on the way.
-- Also returns when the next dispatch may expect its slot (ms from now: after the slots of the
-- dispatches not yet begun) and the gap between two slots (ms).
local function budget(rk, account, now_ms, limits, horizon_ms, looks)
  local slot, sec_limit, min_limit = earliest_slot(rk, account, now_ms, limits, looks)
  local dispatched = rk.dispatched
  redis.call('ZREMRANGEBYSCORE', dispatched, '-inf', now_ms / 1000)
  local waiting = redis.call('ZCARD', dispatched)
  local free = math.floor((now_ms + horizon_ms - slot) * sec_limit / limits.sec_window) + 1
  local in_minute = redis.call('ZCOUNT', rk.min_window,
    now_ms - limits.min_window, '+inf')
  local gap = limits.sec_window / sec_limit
  return math.max(0, math.min(free, min_limit - in_minute) - waiting),
    slot - now_ms + waiting * gap, gap
end

-- The call whose slot entry is `entry` reached the Gateway arrival_ms after its slot: its entry
-- moves there, so that the slots handed out after the answer lie a window after the call's
-- arrival, not its slot (the Gateway counts arrivals; a call that went out late takes its late
-- place in the window, and the call a window later waits as long). Only ever later (GT), never
-- past the settlement's now_ms (the call was answered by then: a clock stepped during the call
-- cannot push the entry into the future), and only while the entry is in the window (XX):
-- trimmed or given back, it stays out.
local function arrived(rk, entry, arrival_ms, now_ms)
  local slot_ms = reserved_slot(entry)
  if slot_ms and arrival_ms > 0 then
    local at = math.min(slot_ms + arrival_ms, now_ms)
    redis.call('ZADD', rk.sec_window, 'XX', 'GT', at, entry)
  end
end

local FILL_MAX = 2000

-- How often unchanged learned limits have their lifetime renewed (s), and that lifetime (s).
local LIMITS_RENEW_S, LIMITS_KEPT_S = 3600, 86400

-- Learn from one answer's X-RateLimit headers (bounded, under the ceiling, by the worker):
-- adopt the limits the Gateway announces, and when it says fewer calls are left in a window than
-- the log shows, fill the log to match (another client is using the key), never past the limit.
-- answer: {sec = {window_ms, limit, remaining}, min = {...}} (nil where a header was absent);
-- tag: unique to this answer (the settled dispatch's member), names the entries it adds.
-- The learned limits are written when they change, else renewed hourly: kept a day after the
-- last answer announcing them.
local function learn(rk, now_ms, answer, tag, looks)
  local limits = rk.limits
  local stored = redis.call('HMGET', limits, 'sec', 'min', 'renewed')
  local known = {sec = tonumber(stored[1]), min = tonumber(stored[2])}
  local write = {}
  for _, span in ipairs({'sec', 'min'}) do
    local limit = answer[span][2]
    if limit and limit >= 1 then
      if limit ~= known[span] then write[#write + 1] = span; write[#write + 1] = limit end
      known[span] = limit
    end
  end
  looks.learned[limits] = {known.sec, known.min}
  local renewed = tonumber(stored[3]) or 0
  local announced = (answer.sec[2] or 0) >= 1 or (answer.min[2] or 0) >= 1
  if #write > 0 or (announced and now_ms - renewed >= LIMITS_RENEW_S * 1000) then
    redis.call('HSET', limits, 'renewed', now_ms, unpack(write))
    redis.call('EXPIRE', limits, LIMITS_KEPT_S)
  end
  for _, span in ipairs({'sec', 'min'}) do
    local window_ms, remaining, limit = answer[span][1], answer[span][3], known[span]
    if limit and limit >= 1 and remaining then
      local log = rk[span .. '_window']
      local count = redis.call('ZCOUNT', log, now_ms - window_ms, now_ms)
      -- At most the limit in force, and at most FILL_MAX entries per answer: the next answers
      -- compared fill the rest, and no single script blocks Redis for long.
      local missing = math.min((limit - count) - math.max(remaining, 0), FILL_MAX)
      if missing > 0 then
        local entries = {}
        for i = 1, missing do
          entries[#entries + 1] = now_ms
          entries[#entries + 1] = SEEN .. tag .. ':' .. now_ms .. ':' .. i
          if #entries >= 1000 then
            redis.call('ZADD', log, unpack(entries))
            entries = {}
          end
        end
        if #entries > 0 then redis.call('ZADD', log, unpack(entries)) end
        -- Never shortened: reserve's upkeep made the log outlast slots further ahead.
        if redis.call('PTTL', log) < window_ms + 1000 then
          redis.call('PEXPIRE', log, window_ms + 1000)
        end
      end
    end
  end
end
