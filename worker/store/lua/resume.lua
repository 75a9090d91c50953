-- Put the jobs held behind an account's halt back on the schedule, due now, a chunk at a time:
-- the caller reads the head of the hold list and each job's idempotency key, then this script
-- releases exactly those jobs, if they are still the list's head. The halt is lifted in the
-- same step as the list is found empty, never before: a resume cut short leaves the account
-- halted with its jobs held or on the schedule (where a begin holds them again), never a job
-- held without a halt to resume.
-- KEYS: halt, halt_probe, held, scheduled_accounts, then the account's lanes: due_high,
--   due_normal, due_bulk, then 4 per job: its own keys (job, history, idempotency, ledger)
-- ARGV: account, now, event_json, gateway_only ('1': only a halt the Gateway caused), then
--   2 per job: id, idempotency key (as read)
-- Returns {released, left}: released is -1 when the halt is an operator's and gateway_only is
-- '1' (nothing done), -2 when the list's head is no longer the jobs given (read it again);
-- left is how many jobs the list still holds (0: the halt is lifted).
local halt, probe, held, scheduled_accounts = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local lanes = {high = KEYS[5], normal = KEYS[6], bulk = KEYS[7]}
local account, now, event = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if ARGV[4] == '1' then
  local by, code = unpack(redis.call('HMGET', halt, 'by', 'code'))
  if by == 'operator' or (not by and code == 'MANUAL') then return {-1, redis.call('LLEN', held)} end
end
-- The jobs given, each with its own keys.
local jobs = {}
local k = 7  -- the keys of the job before this one end at KEYS[k]
for i = 5, #ARGV, 2 do
  jobs[#jobs + 1] = {id = ARGV[i], key = ARGV[i + 1], own = {job = KEYS[k + 1],
    history = KEYS[k + 2], idempotency = KEYS[k + 3], ledger = KEYS[k + 4]}}
  k = k + 4
end
if #jobs > 0 then
  local head = redis.call('LRANGE', held, 0, #jobs - 1)
  for n, job in ipairs(jobs) do
    if head[n] ~= job.id then return {-2, redis.call('LLEN', held)} end
  end
  redis.call('LTRIM', held, #jobs, -1)
end
local released = 0
for _, job in ipairs(jobs) do
  local own = job.own
  local state, key, priority = unpack(redis.call('HMGET', own.job, 'state', 'key', 'priority'))
  if state == 'held' and key == job.key then
    keep(own, job.id)
    local gen = redis.call('HINCRBY', own.job, 'gen', 1)
    redis.call('HSET', own.job, 'state', 'queued', 'updated_at', now, 'due_at', now)
    schedule_in(lanes[lane_of(priority)], scheduled_accounts, account, now, job.id .. '|' .. gen)
    redis.call('RPUSH', own.history, event)
    released = released + 1
  end
end
local left = redis.call('LLEN', held)
if left == 0 then redis.call('DEL', halt, probe) end
return {released, left}
