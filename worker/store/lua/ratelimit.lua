-- The account's rate limiter, included at the top of begin_job.lua, finish.lua and the pump's
-- scripts (plan.lua, promote.lua).
-- Two sliding windows (sec, min) per account are logs of call slots (sorted sets by time, in
-- ms). A slot is handed out in time order, evenly spaced after the last one, where both windows
-- allow it; so waiting workers line up instead of polling, and the limit is used fully.

-- The limits in force: what the Gateway announced, else where the limiter starts; never above
-- the ceilings (the configured limits). A stored value below 1 is not a limit: ignored.
local function rate_limits(limits_key, limits)
  local learned = redis.call('HMGET', limits_key, 'sec', 'min')
  local sec, min = tonumber(learned[1]), tonumber(learned[2])
  if not sec or sec < 1 then sec = limits.sec end
  if not min or min < 1 then min = limits.min end
  return math.floor(math.min(sec, limits.sec_ceiling)), math.floor(math.min(min, limits.min_ceiling))
end

-- The earliest slot (ms) both windows and the cooldown allow, and the limits in force.
local function earliest_slot(prefix, account, now_ms, limits)
  local sec_limit, min_limit = rate_limits(keys.limits(prefix, account), limits)
  local sec, min = keys.window(prefix, account, 'sec'), keys.window(prefix, account, 'min')
  local slot = math.max(now_ms, tonumber(redis.call('GET', keys.cooldown(prefix, account)) or '0'))
  -- Slots are evenly spaced (window / limit apart), never bunched: a burst of calls reaches the
  -- Gateway spread out, so the jitter of their arrival cannot tip a window over its limit.
  local last = redis.call('ZRANGE', sec, -1, -1, 'WITHSCORES')
  if last[2] then slot = math.max(slot, tonumber(last[2]) + limits.sec_window / sec_limit) end
  for _, w in ipairs({{sec, sec_limit, limits.sec_window}, {min, min_limit, limits.min_window}}) do
    local kth = redis.call('ZRANGE', w[1], -w[2], -w[2], 'WITHSCORES')
    if kth[2] then slot = math.max(slot, tonumber(kth[2]) + w[3]) end
  end
  return slot, sec_limit, min_limit
end

-- The earliest slot; reserved when within max_wait_ms. Returns (reserved, wait_ms[, entry]).
local function reserve(prefix, account, now_ms, limits, max_wait_ms)
  local sec, min = keys.window(prefix, account, 'sec'), keys.window(prefix, account, 'min')
  local seq_key = keys.rate_sequence(prefix, account)
  redis.call('ZREMRANGEBYSCORE', sec, '-inf', now_ms - limits.sec_window)
  redis.call('ZREMRANGEBYSCORE', min, '-inf', now_ms - limits.min_window)
  local slot = earliest_slot(prefix, account, now_ms, limits)
  local wait = math.ceil(slot - now_ms)
  if wait > max_wait_ms then return false, wait end
  local seq = redis.call('INCR', seq_key)
  redis.call('ZADD', sec, slot, seq)
  redis.call('ZADD', min, slot, seq)
  redis.call('PEXPIRE', sec, limits.sec_window + wait + 1000)
  redis.call('PEXPIRE', min, limits.min_window + wait + 1000)
  redis.call('PEXPIRE', seq_key, limits.min_window + wait + 1000)
  return true, wait, seq
end

-- The limits of the pump's scripts, from ARGV[first..first+7]: the seven of begin.lua (sec,
-- min, sec_window, min_window, max_wait, sec_ceiling, min_ceiling) and the JSON of the accounts
-- with limits of their own ('' for none). Returns a function: account -> its limits.
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
  end
end

-- How many more dispatches of the account its limiter can take within horizon_ms: the slots
-- from the earliest free one to the horizon, evenly spaced as reserve hands them out, less the
-- dispatches not yet begun (each will take one), never past what the minute window has left.
-- A dispatch not begun by its entry's score (s) stops counting: it was lost on the way.
local function budget(prefix, account, now_ms, limits, horizon_ms)
  local slot, sec_limit, min_limit = earliest_slot(prefix, account, now_ms, limits)
  local dispatched = keys.dispatched(prefix, account)
  redis.call('ZREMRANGEBYSCORE', dispatched, '-inf', now_ms / 1000)
  local waiting = redis.call('ZCARD', dispatched)
  local free = math.floor((now_ms + horizon_ms - slot) * sec_limit / limits.sec_window) + 1
  local in_minute = redis.call('ZCOUNT', keys.window(prefix, account, 'min'),
    now_ms - limits.min_window, '+inf')
  return math.max(0, math.min(free, min_limit - in_minute) - waiting)
end

local FILL_MAX = 2000

-- Learn from one answer's X-RateLimit headers (bounded, under the ceiling, by the worker):
-- adopt a limit the Gateway announces, and when it says fewer calls are left in a window than
-- the log shows, fill the log to match (another client is using the key), never past the limit.
-- Returns how many calls the log was short of.
local function learn(prefix, account, now_ms, window_ms, span, limit, remaining)
  local limits = keys.limits(prefix, account)
  if limit and limit < 1 then limit = nil end
  if limit then
    redis.call('HSET', limits, span, limit)
    redis.call('EXPIRE', limits, 86400)
  else
    limit = tonumber(redis.call('HGET', limits, span) or '')
  end
  if not (limit and remaining) then return 0 end
  local log = keys.window(prefix, account, span)
  local count = redis.call('ZCOUNT', log, now_ms - window_ms, now_ms)
  -- At most the limit in force, and at most FILL_MAX entries per answer: the next answers fill
  -- the rest, and no single script blocks Redis for long.
  local missing = math.min((limit - count) - math.max(remaining, 0), FILL_MAX)
  if missing > 0 then
    local last = redis.call('INCRBY', keys.rate_sequence(prefix, account), missing)
    local entries = {}
    for seq = last - missing + 1, last do
      entries[#entries + 1] = now_ms
      entries[#entries + 1] = 'seen:' .. seq
      if #entries >= 1000 then
        redis.call('ZADD', log, unpack(entries))
        entries = {}
      end
    end
    if #entries > 0 then redis.call('ZADD', log, unpack(entries)) end
  end
  if missing > 0 then redis.call('PEXPIRE', log, window_ms + 1000) end
  return math.max(missing, 0)
end
