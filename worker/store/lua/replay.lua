-- Put dead letters back on the schedule, paced, each in one atomic step: the job is scheduled
-- and its record leaves the DLQ together, so an interrupted replay loses nothing and a re-run
-- continues where it stopped. A replayed job is pending again: nothing of it expires.
-- A job WhatsApp delivered is never sent again, whatever its dead letter says (a `failed`
-- before `delivered`, forged or shuffled): it is settled as sent and counted `delivered`.
-- (Its parts from lib/ are included above, as protocol.py declares.)
-- KEYS: dead_letter_index, dead_letter_counts, scheduled_accounts, then 10 per dead letter: its
--   record, its job's own keys (job, history, idempotency, ledger), its account's breaker and
--   breaker_probe, and its account's lanes (due_high, due_normal, due_bulk): named for the
--   account and idempotency key the caller read from the record
-- ARGV: now, start_offset_s, interval_s, retention_s, event_json, then 3 per dead letter: id,
--   account, idempotency key (as read; '' for a record that names none)
-- Returns {replayed, already_sent, expired, missing, delivered}. A record that names another
-- account or key by now than was read (rewritten in between), or none, is left as it is: a
-- re-run reads it again.
local index, counts, scheduled_accounts = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local offset, interval = tonumber(ARGV[2]), tonumber(ARGV[3])
local retention_ms = math.max(1, math.floor(tonumber(ARGV[4]) * 1000))
local event = ARGV[5]
local replayed, already_sent, expired, missing, delivered = 0, 0, 0, 0, 0

local function present(value)
  if value == nil or value == cjson.null then return nil end
  return value
end

local function forget(dead_letter, id, code)
  redis.call('DEL', dead_letter)
  redis.call('ZREM', index, id)
  if code and redis.call('HINCRBY', counts, code, -1) <= 0 then redis.call('HDEL', counts, code) end
end

local k = 3  -- the keys of the dead letter before this one end at KEYS[k]
for i = 6, #ARGV, 3 do
  local id, account, key = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local dead_letter = KEYS[k + 1]
  local own = {job = KEYS[k + 2], history = KEYS[k + 3], idempotency = KEYS[k + 4],
    ledger = KEYS[k + 5]}
  local breaker, probe = KEYS[k + 6], KEYS[k + 7]
  local lanes = {high = KEYS[k + 8], normal = KEYS[k + 9], bulk = KEYS[k + 10]}
  k = k + 10
  local job, ledger = own.job, own.ledger
  local raw = redis.call('GET', dead_letter)
  local readable, record = pcall(cjson.decode, raw or '')
  if not raw then
    redis.call('ZREM', index, id)
    missing = missing + 1
  elseif readable and type(record) == 'table' and record.account == account
      and record.idempotency_key == key then
    local job_fields = redis.call('HMGET', job, 'delivery_status', 'wamid')
    if reached_delivered(own.history, job_fields[1]) then
      redis.call('HSET', job, 'state', JOB_STATE.SENT, 'updated_at', now)
      retain(own, id, retention_ms, job_fields[2] or present(record.wamid))
      forget(dead_letter, id, record.code)
      delivered = delivered + 1
    else
      if present(record.wamid) and redis.call('GET', ledger) == record.wamid then
        -- Sent, but WhatsApp could not deliver it (parked undelivered, outside_window,
        -- opted_out, or retries_exhausted after 131049s): the ledger lets exactly this job
        -- through again.
        redis.call('DEL', ledger)
      end
      local wamid = redis.call('GET', ledger)
      local expires_at = tonumber(present(record.expires_at) or '')
      if wamid then
        if redis.call('EXISTS', job) == 1 then
          redis.call('HSET', job, 'state', JOB_STATE.SENT, 'wamid', wamid)
        end
        retain(own, id, retention_ms)
        forget(dead_letter, id, record.code)
        already_sent = already_sent + 1
      elseif expires_at and expires_at <= now then
        expired = expired + 1
      else
        if redis.call('EXISTS', job) == 0 then
          -- The record outlived the job (an import, a record kept from before): rebuild the job.
          redis.call('HSET', job, 'id', id, 'account', account, 'key', key,
            'message', cjson.encode(record.message), 'gen', 0,
            'enqueued_at', present(record.enqueued_at) or now,
            'expires_at', present(record.expires_at) or '')
        end
        if redis.call('HEXISTS', job, 'message') == 0 then
          redis.call('HSET', job, 'message', cjson.encode(record.message))
        end
        local due_at = now + offset + replayed * interval
        local gen = redis.call('HINCRBY', job, 'gen', 1)
        local state = due_at > now and JOB_STATE.SCHEDULED or JOB_STATE.QUEUED
        redis.call('HSET', job, 'state', state, 'attempts', 0, 'reschedules', 0,
          'receipt_retries', 0, 'calling', 0, 'updated_at', now, 'due_at', due_at,
          'parked_reason', '')
        schedule_in(lanes[lane_of(redis.call('HGET', job, 'priority'))], scheduled_accounts,
          account, due_at, id .. '|' .. gen)
        redis.call('RPUSH', own.history, event)
        keep(own, id)
        if record.reason == 'billing' and redis.call('EXISTS', breaker) == 1 then
          -- The operator says the balance is back: probe at once, the others wait for it.
          redis.call('HSET', breaker, 'half_open', 1)
          redis.call('DEL', probe)
        end
        forget(dead_letter, id, record.code)
        replayed = replayed + 1
      end
    end
  end
end
return {replayed, already_sent, expired, missing, delivered}
