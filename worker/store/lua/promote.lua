-- Take up to `limit` jobs for dispatch: due ones from the schedule, then dispatches whose lease
-- ran out (a lost broker message, a worker that died). Each taken job moves to the leases with
-- score now + lease, so a dispatch that never gets settled comes back by itself.
-- ARGV: prefix, now, limit, lease_s
local prefix, now, limit, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local due, leases = keys.due(prefix), keys.leases(prefix)
local members = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, limit)
if #members < limit then
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, limit - #members)
  for _, member in ipairs(expired) do members[#members + 1] = member end
end
for _, member in ipairs(members) do
  redis.call('ZREM', due, member)
  redis.call('ZADD', leases, now + lease, member)
  local id = string.match(member, '^(.*)|')
  local job = keys.job(prefix, id)
  if redis.call('HGET', job, 'state') == 'scheduled' then
    redis.call('HSET', job, 'state', 'queued')
  end
end
return members
