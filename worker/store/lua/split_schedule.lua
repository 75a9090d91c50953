-- Move entries of the one schedule versions before lanes kept into the lanes: each to its job's
-- account and priority, at its time, in the same step as it leaves the old one, so a job is
-- never in both or neither. An entry whose job is gone names nothing: it is dropped.
-- KEYS: legacy_due, scheduled_accounts, then 2 per entry: its job, and the lane it goes to (as
--   the caller read the job's account and priority; the legacy schedule itself for a job gone)
-- ARGV: 3 per entry: member, account and priority as read ('' for a job gone)
-- Returns {moved, left}. An entry that left the old schedule meanwhile, or whose job now names
-- another account or priority, is left for the next round, which reads it again.
local legacy, scheduled_accounts = KEYS[1], KEYS[2]
local moved = 0
local k = 2  -- the keys of the entry before this one end at KEYS[k]
for i = 1, #ARGV, 3 do
  local member, account, priority = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local job, due = KEYS[k + 1], KEYS[k + 2]
  k = k + 2
  local at = redis.call('ZSCORE', legacy, member)
  if at then
    local now_account, now_priority = unpack(redis.call('HMGET', job, 'account', 'priority'))
    if not now_account and account == '' then
      redis.call('ZREM', legacy, member)
    elseif now_account == account and (now_priority or '') == priority then
      schedule_in(due, scheduled_accounts, account, at, member)
      redis.call('ZREM', legacy, member)
      moved = moved + 1
    end
  end
end
return {moved, redis.call('ZCARD', legacy)}
