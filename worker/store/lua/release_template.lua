-- Release a template an account held and put the jobs held behind it back on the schedule, due
-- now, each once (a job's new generation is its only dispatch). The caller reads the template's
-- held jobs (one lexical range of held_jobs) and passes them, a batch a call, until none is
-- left. The first call lifts the hold, so no begin holds another job behind it; a later call
-- that finds the template held again (a new hold came meanwhile) stops: the jobs left are that
-- hold's.
-- KEYS: the account's template holds, its held_jobs, scheduled_accounts, then the account's
--   lanes: due_high, due_normal, due_bulk, then 2 per job: job, history
-- ARGV: account, template ('<name>|<language>'), now, event_json, lift ('1' on the first call),
--   then one job id per job
-- Returns {lifted (1 when this call lifted the hold), released, left (the template's jobs
--   still held; 0 once the template is held again)}.
local holds, held_jobs, scheduled_accounts = KEYS[1], KEYS[2], KEYS[3]
local lanes = {high = KEYS[4], normal = KEYS[5], bulk = KEYS[6]}
local account, template, now, event = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local lifted = 0
if ARGV[5] == '1' then
  lifted = redis.call('HDEL', holds, template)
elseif redis.call('HEXISTS', holds, template) == 1 then
  return {0, 0, 0}
end
local released = 0
local k = 6  -- the keys of the job before this one end at KEYS[k]
for i = 6, #ARGV do
  local id = ARGV[i]
  -- Only a job still in the set is released: one passed twice, or by two releases, goes once.
  if redis.call('ZREM', held_jobs, template .. ':' .. id) == 1 then
    local job = KEYS[k + 1]
    local state, reason, priority = unpack(redis.call('HMGET', job, 'state', 'held_reason',
      'priority'))
    if state == JOB_STATE.HELD and reason == 'template_paused' then
      local gen = redis.call('HINCRBY', job, 'gen', 1)
      redis.call('HSET', job, 'state', JOB_STATE.QUEUED, 'held_reason', '', 'updated_at', now,
        'due_at', now)
      schedule_in(lanes[lane_of(priority)], scheduled_accounts, account, now, id .. '|' .. gen)
      redis.call('RPUSH', KEYS[k + 2], event)
      released = released + 1
    end
  end
  k = k + 2
end
local left = redis.call('ZLEXCOUNT', held_jobs, '[' .. template .. ':', '(' .. template .. ';')
return {lifted, released, left}
