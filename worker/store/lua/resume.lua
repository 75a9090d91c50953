-- Lift an account's halt and put every held job back on the schedule, due now.
-- KEYS: halt, halt_probe, held, scheduled_accounts, then the account's lanes: due_high,
--   due_normal, due_bulk
-- ARGV: prefix (for the held jobs' own keys only: their ids are known once popped), account,
--   now, event_json[, '1': only a halt the Gateway caused]
-- Returns the number of jobs released; -1 when the halt is an operator's and ARGV[5] is '1'.
local halt, probe, held, scheduled_accounts = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local lanes = {high = KEYS[5], normal = KEYS[6], bulk = KEYS[7]}
local prefix, account, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
if ARGV[5] == '1' then
  local by, code = unpack(redis.call('HMGET', halt, 'by', 'code'))
  if by == 'operator' or (not by and code == 'MANUAL') then return -1 end
end
redis.call('DEL', halt, probe)
local released = 0
while true do
  local ids = redis.call('LPOP', held, 500)
  if not ids then break end
  for _, id in ipairs(ids) do
    local job = keys.job(prefix, id)
    local state, key, priority = unpack(redis.call('HMGET', job, 'state', 'key', 'priority'))
    if state == JOB_STATE.HELD then
      keep(own_keys(prefix, id, account, key), id)
      local gen = redis.call('HINCRBY', job, 'gen', 1)
      redis.call('HSET', job, 'state', JOB_STATE.QUEUED, 'updated_at', now, 'due_at', now)
      schedule_in(lanes[lane_of(priority)], scheduled_accounts, account, now, id .. '|' .. gen)
      redis.call('RPUSH', keys.history(prefix, id), ARGV[4])
      released = released + 1
    end
  end
end
return released
