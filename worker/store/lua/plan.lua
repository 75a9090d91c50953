-- What the pump may dispatch now, by account: the account's due jobs, up to what its limiter
-- can take within the horizon (budget, in ratelimit.lua); a paused bulk lane's are not due (see
-- lane_open in keys.lua). An account whose lanes are all empty
-- leaves the set of scheduled accounts (a script adding a job adds the account back).
-- ARGV: prefix, now_s, horizon_s, then the limits (see limits_from in ratelimit.lua)
-- Returns {account, wanted, ...}, only accounts that may dispatch some.
local prefix, now = ARGV[1], tonumber(ARGV[2])
local now_ms, horizon_ms = math.floor(now * 1000), math.floor(tonumber(ARGV[3]) * 1000)
local limits_of = limits_from(ARGV, 4)
local looks = new_looks()
local accounts = keys.scheduled_accounts(prefix)
local wanted = {}
for _, account in ipairs(redis.call('SMEMBERS', accounts)) do
  local due_now, waiting = 0, 0
  for _, lane in ipairs(LANES) do
    local due = keys.due(prefix, account, lane)
    waiting = waiting + redis.call('ZCARD', due)
    if lane_open(prefix, account, lane, now_ms) then
      due_now = due_now + redis.call('ZCOUNT', due, '-inf', now)
    end
  end
  if waiting == 0 then
    redis.call('SREM', accounts, account)
  elseif due_now > 0 then
    -- budget's first value only: as math.min's last argument it would bring its others along.
    local can = budget(rate_keys(prefix, account), account, now_ms, limits_of(account), horizon_ms, looks)
    can = math.min(due_now, can)
    if can > 0 then
      wanted[#wanted + 1] = account
      wanted[#wanted + 1] = can
    end
  end
end
return wanted
