-- Move up to `limit` entries of the one schedule versions before lanes kept into the lanes: each
-- to its job's account and priority, at its time, in the same step as it leaves the old one, so
-- a job is never in both or neither. An entry whose job is gone names nothing: it is dropped.
-- ARGV: prefix, limit. Returns {moved, left}.
local prefix, limit = ARGV[1], tonumber(ARGV[2])
local legacy = keys.legacy_due(prefix)
local entries = redis.call('ZRANGE', legacy, 0, limit - 1, 'WITHSCORES')
local moved = 0
for i = 1, #entries, 2 do
  local member, at = entries[i], entries[i + 1]
  local job = keys.job(prefix, string.match(member, '^(.*)|') or member)
  local account, priority = unpack(redis.call('HMGET', job, 'account', 'priority'))
  if account then
    schedule(prefix, account, priority, at, member)
    moved = moved + 1
  end
  redis.call('ZREM', legacy, member)
end
return {moved, redis.call('ZCARD', legacy)}
