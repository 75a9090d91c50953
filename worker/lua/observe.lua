-- Learn from the Gateway's X-RateLimit headers: adopt a limit it announces, and when it says
-- fewer calls are left in a window than this account's log shows, fill the log to match.
-- ARGV: prefix, account, now_ms, sec_window_ms, min_window_ms,
--       sec_limit, sec_remaining, min_limit, min_remaining ('' where a header was absent)
local prefix, account, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local base = prefix .. 'rate:' .. account
local limits = base .. ':limits'

local function learn(span, window_ms, limit, remaining)
  if limit then
    redis.call('HSET', limits, span, limit)
  else
    limit = tonumber(redis.call('HGET', limits, span) or '')
  end
  if not (limit and remaining) then return 0 end
  local log = base .. ':' .. span
  local used = redis.call('ZCOUNT', log, now - window_ms, now)
  local missing = (limit - used) - remaining
  for _ = 1, missing do
    redis.call('ZADD', log, now, 'seen:' .. redis.call('INCR', base .. ':seq'))
  end
  if missing > 0 then redis.call('PEXPIRE', log, window_ms + 1000) end
  return math.max(missing, 0)
end

local a = learn('sec', tonumber(ARGV[4]), tonumber(ARGV[6]), tonumber(ARGV[7]))
local b = learn('min', tonumber(ARGV[5]), tonumber(ARGV[8]), tonumber(ARGV[9]))
redis.call('EXPIRE', limits, 86400)
return a + b
