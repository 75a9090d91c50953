-- Write a batch of new jobs in one round trip: record, history, schedule.
-- A job whose idempotency key was seen before is not written; its first job id is returned.
-- A batch key (the HTTP batch's Idempotency-Key) seen before on the same accounts writes nothing
-- and returns the first batch's ids. Nothing written here for a job expires: a pending job keeps
-- its record however long it waits; a batch key is remembered batch_keep_ms.
-- KEYS: batch (read and written only with a batch key), enqueued_count, scheduled_accounts,
--   then 4 per job: idempotency, job, history, due (its lane)
-- ARGV: now, batch_key ('' for none), batch_keep_ms, then 11 values per job: id, account, key,
--   message_json, due_at, expires_at ('' for none), state, history_json,
--   priority (high|normal|bulk), template ('<name>|<language>', '' for no template message),
--   to (the recipient, read by pair pacing)
-- Reply: {seen, id...}: seen is 1 when the batch key was known (the ids are the first batch's),
--   else 0 and one id per job (a known idempotency key's first job id, else the job's own).
local now = ARGV[1]
local batch = nil
if ARGV[2] ~= '' then
  batch = KEYS[1]
  local first = redis.call('GET', batch)
  if first then
    local reply = cjson.decode(first)
    table.insert(reply, 1, 1)
    return reply
  end
end
local ids = {}
local added = 0
local k = 3  -- the keys of the job before this one end at KEYS[k]
for i = 4, #ARGV, 11 do
  local id, account, key = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local idem = KEYS[k + 1]
  local first = redis.call('GET', idem)
  if first then
    ids[#ids + 1] = first
  else
    redis.call('SET', idem, id)
    redis.call('HSET', KEYS[k + 2],
      'id', id, 'account', account, 'key', key, 'message', ARGV[i + 3],
      'state', ARGV[i + 6], 'gen', 1, 'attempts', 0, 'reschedules', 0, 'calling', 0,
      'enqueued_at', now, 'updated_at', now, 'due_at', ARGV[i + 4], 'expires_at', ARGV[i + 5],
      'priority', ARGV[i + 8], 'key_owned', '1', 'template', ARGV[i + 9], 'to', ARGV[i + 10])
    redis.call('RPUSH', KEYS[k + 3], ARGV[i + 7])
    schedule_in(KEYS[k + 4], KEYS[3], account, ARGV[i + 4], id .. '|1')
    ids[#ids + 1] = id
    added = added + 1
  end
  k = k + 4
end
if added > 0 then redis.call('INCRBY', KEYS[2], added) end
if batch then redis.call('SET', batch, cjson.encode(ids), 'PX', ARGV[3]) end
table.insert(ids, 1, 0)
return ids
