-- Put exported dead letters back, each once: a record whose id the DLQ already holds, or whose
-- job is pending or sent (no longer parked), is skipped. Nothing is scheduled or sent.
-- ARGV: prefix, then (id, parked_at, code, record_json) for each record.
-- Returns {imported, already_there, job_not_parked}.
local prefix = ARGV[1]
local index, counts = keys.dead_letter_index(prefix), keys.dead_letter_counts(prefix)
local imported, already_there, not_parked = 0, 0, 0
for i = 2, #ARGV, 4 do
  local id, parked_at, code, record = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local state = redis.call('HGET', keys.job(prefix, id), 'state')
  if redis.call('EXISTS', keys.dead_letter(prefix, id)) == 1 then
    already_there = already_there + 1
  elseif state and state ~= 'parked' then
    not_parked = not_parked + 1
  else
    redis.call('SET', keys.dead_letter(prefix, id), record)
    redis.call('ZADD', index, parked_at, id)
    redis.call('HINCRBY', counts, code, 1)
    if state then
      -- Parked again: the job's record lives as long as its dead letter.
      local fields = cjson.decode(record)
      keep(prefix, id, fields.account, fields.idempotency_key)
    end
    imported = imported + 1
  end
end
return {imported, already_there, not_parked}
