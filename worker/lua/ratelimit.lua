-- The account's rate limiter, included at the top of begin.lua and finish.lua.
-- Two sliding windows (sec, min) per account are logs of call slots (sorted sets by time, in
-- ms). A slot is handed out in time order, evenly spaced after the last one, where both windows
-- allow it; so waiting workers line up instead of polling, and the limit is used fully.

-- The limits in force: what the Gateway announced, else what was configured.
local function rate_limits(limits_key, sec_configured, min_configured)
  local learned = redis.call('HMGET', limits_key, 'sec', 'min')
  return tonumber(learned[1]) or sec_configured, tonumber(learned[2]) or min_configured
end

-- The earliest slot both windows and the cooldown allow; reserved when within max_wait_ms.
-- Returns (reserved, wait_ms).
local function reserve(prefix, account, now_ms, limits, max_wait_ms)
  local sec_limit, min_limit = rate_limits(keys.limits(prefix, account), limits.sec, limits.min)
  local sec, min = keys.window(prefix, account, 'sec'), keys.window(prefix, account, 'min')
  local seq_key = keys.rate_sequence(prefix, account)
  redis.call('ZREMRANGEBYSCORE', sec, '-inf', now_ms - limits.sec_window)
  redis.call('ZREMRANGEBYSCORE', min, '-inf', now_ms - limits.min_window)
  local slot = math.max(now_ms, tonumber(redis.call('GET', keys.cooldown(prefix, account)) or '0'))
  -- Slots are evenly spaced (window / limit apart), never bunched: a burst of calls reaches the
  -- Gateway spread out, so the jitter of their arrival cannot tip a window over its limit.
  local last = redis.call('ZRANGE', sec, -1, -1, 'WITHSCORES')
  if last[2] then slot = math.max(slot, tonumber(last[2]) + limits.sec_window / sec_limit) end
  for _, w in ipairs({{sec, sec_limit, limits.sec_window}, {min, min_limit, limits.min_window}}) do
    local kth = redis.call('ZRANGE', w[1], -w[2], -w[2], 'WITHSCORES')
    if kth[2] then slot = math.max(slot, tonumber(kth[2]) + w[3]) end
  end
  local wait = math.ceil(slot - now_ms)
  if wait > max_wait_ms then return false, wait end
  local seq = redis.call('INCR', seq_key)
  redis.call('ZADD', sec, slot, seq)
  redis.call('ZADD', min, slot, seq)
  redis.call('PEXPIRE', sec, limits.sec_window + wait + 1000)
  redis.call('PEXPIRE', min, limits.min_window + wait + 1000)
  redis.call('PEXPIRE', seq_key, limits.min_window + wait + 1000)
  return true, wait
end

-- Learn from one answer's X-RateLimit headers: adopt a limit the Gateway announces, and when it
-- says fewer calls are left in a window than the log shows, fill the log to match (another
-- client is using the key). Returns how many calls the log was short of.
local function learn(prefix, account, now_ms, window_ms, span, limit, remaining)
  local limits = keys.limits(prefix, account)
  if limit then
    redis.call('HSET', limits, span, limit)
    redis.call('EXPIRE', limits, 86400)
  else
    limit = tonumber(redis.call('HGET', limits, span) or '')
  end
  if not (limit and remaining) then return 0 end
  local log = keys.window(prefix, account, span)
  local missing = (limit - redis.call('ZCOUNT', log, now_ms - window_ms, now_ms)) - remaining
  for _ = 1, missing do
    redis.call('ZADD', log, now_ms, 'seen:' .. redis.call('INCR', keys.rate_sequence(prefix, account)))
  end
  if missing > 0 then redis.call('PEXPIRE', log, window_ms + 1000) end
  return math.max(missing, 0)
end
