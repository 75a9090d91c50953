-- Put exported dead letters back, each once: a record whose id the DLQ already holds, or whose
-- job is pending or sent (no longer parked), is skipped. Nothing is scheduled or sent.
-- KEYS: dead_letter_index, dead_letter_counts, then 5 per record: the dead letter, then its
--   job's own keys (job, history, idempotency, ledger: named for the record's account and key)
-- ARGV: 6 per record: id, account, idempotency key, parked_at, code, record_json
-- Returns {imported, already_there, job_not_parked}: a job that names another account or key
-- than its record is not that record's job, and counts as not parked.
local index, counts = KEYS[1], KEYS[2]
local imported, already_there, not_parked = 0, 0, 0
local k = 2  -- the keys of the record before this one end at KEYS[k]
for i = 1, #ARGV, 6 do
  local id, account, key = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local parked_at, code, record = ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local dead_letter = KEYS[k + 1]
  local own = {job = KEYS[k + 2], history = KEYS[k + 3], idempotency = KEYS[k + 4],
    ledger = KEYS[k + 5]}
  k = k + 5
  local job = redis.call('HMGET', own.job, 'state', 'account', 'key')
  local state = job[1]
  if redis.call('EXISTS', dead_letter) == 1 then
    already_there = already_there + 1
  elseif state and (state ~= JOB_STATE.PARKED or job[2] ~= account or job[3] ~= key) then
    not_parked = not_parked + 1
  else
    redis.call('SET', dead_letter, record)
    redis.call('ZADD', index, parked_at, id)
    redis.call('HINCRBY', counts, code, 1)
    if state then
      -- Parked again: the job's record lives as long as its dead letter.
      keep(own, id)
    end
    imported = imported + 1
  end
end
return {imported, already_there, not_parked}
