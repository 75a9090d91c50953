-- Take up to `limit` due entries for dispatch. Each stays in the schedule with its score moved
-- to now + lease, so an entry whose dispatch is lost (broker restart, crashed pump) comes back.
-- ARGV: prefix, now, limit, lease_s
local prefix, now, limit, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local due = prefix .. 'due'
local members = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, limit)
for _, member in ipairs(members) do
  redis.call('ZADD', due, now + lease, member)
  local id = string.match(member, '^(.*)|')
  local job = prefix .. 'job:' .. id
  if redis.call('HGET', job, 'state') == 'scheduled' then
    redis.call('HSET', job, 'state', 'queued')
  end
end
return members
