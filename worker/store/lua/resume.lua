-- Lift an account's halt and put every held job back on the schedule, due now.
-- ARGV: prefix, account, now, event_json[, '1': only a halt the Gateway caused]
-- Returns the number of jobs released; -1 when the halt is an operator's and ARGV[5] is '1'.
local prefix, account, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local halt = keys.halt(prefix, account)
if ARGV[5] == '1' then
  local by, code = unpack(redis.call('HMGET', halt, 'by', 'code'))
  if by == 'operator' or (not by and code == 'MANUAL') then return -1 end
end
redis.call('DEL', halt, keys.halt_probe(prefix, account))
local held = keys.held(prefix, account)
local released = 0
while true do
  local ids = redis.call('LPOP', held, 500)
  if not ids then break end
  for _, id in ipairs(ids) do
    local job = keys.job(prefix, id)
    local state, key, priority = unpack(redis.call('HMGET', job, 'state', 'key', 'priority'))
    if state == 'held' then
      keep(prefix, id, account, key)
      local gen = redis.call('HINCRBY', job, 'gen', 1)
      redis.call('HSET', job, 'state', 'queued', 'updated_at', now, 'due_at', now)
      schedule(prefix, account, priority, now, id .. '|' .. gen)
      redis.call('RPUSH', keys.history(prefix, id), ARGV[4])
      released = released + 1
    end
  end
end
return released
