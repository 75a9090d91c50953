-- Lift an account's halt and put every held job back on the schedule, due now.
-- ARGV: prefix, account, now, event_json
-- Returns the number of jobs released.
local prefix, account, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
redis.call('DEL', prefix .. 'halt:' .. account)
local held = prefix .. 'held:' .. account
local released = 0
while true do
  local ids = redis.call('LPOP', held, 500)
  if not ids then break end
  for _, id in ipairs(ids) do
    local job = prefix .. 'job:' .. id
    if redis.call('HGET', job, 'state') == 'held' then
      local gen = redis.call('HINCRBY', job, 'gen', 1)
      redis.call('HSET', job, 'state', 'queued', 'updated_at', now, 'due_at', now)
      redis.call('ZADD', prefix .. 'due', now, id .. '|' .. gen)
      redis.call('RPUSH', job .. ':history', ARGV[4])
      released = released + 1
    end
  end
end
return released
