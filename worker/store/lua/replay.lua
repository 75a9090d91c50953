-- Put dead letters back on the schedule, paced, each in one atomic step: the job is scheduled
-- and its record leaves the DLQ together, so an interrupted replay loses nothing and a re-run
-- continues where it stopped. A replayed job is pending again: nothing of it expires.
-- A job WhatsApp delivered is never sent again, whatever its dead letter says (a `failed`
-- before `delivered`, forged or shuffled): it is settled as sent and counted `delivered`.
-- (Its parts from lib/ are included above, as protocol.py declares.)
-- ARGV: prefix, now, start_offset_s, interval_s, retention_s, event_json, id...
-- Returns {replayed, already_sent, expired, missing, delivered}.
local prefix, now = ARGV[1], tonumber(ARGV[2])
local offset, interval = tonumber(ARGV[3]), tonumber(ARGV[4])
local retention_ms = math.max(1, math.floor(tonumber(ARGV[5]) * 1000))
local event = ARGV[6]
local index, counts = keys.dead_letter_index(prefix), keys.dead_letter_counts(prefix)
local replayed, already_sent, expired, missing, delivered = 0, 0, 0, 0, 0

local function present(value)
  if value == nil or value == cjson.null then return nil end
  return value
end

local function forget(id, code)
  redis.call('DEL', keys.dead_letter(prefix, id))
  redis.call('ZREM', index, id)
  if code and redis.call('HINCRBY', counts, code, -1) <= 0 then redis.call('HDEL', counts, code) end
end

for i = 7, #ARGV do
  local id = ARGV[i]
  local raw = redis.call('GET', keys.dead_letter(prefix, id))
  if not raw then
    redis.call('ZREM', index, id)
    missing = missing + 1
  else
    local record = cjson.decode(raw)
    local account, key = record.account, record.idempotency_key
    local job, history = keys.job(prefix, id), keys.history(prefix, id)
    local ledger = keys.ledger(prefix, account, key)
    local job_fields = redis.call('HMGET', job, 'delivery_status', 'wamid')
    if reached_delivered(prefix, id, job_fields[1]) then
      redis.call('HSET', job, 'state', JOB_STATE.SENT, 'updated_at', now)
      retain(own_keys(prefix, id, account, key), id, retention_ms,
        job_fields[2] or present(record.wamid))
      forget(id, record.code)
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
        retain(own_keys(prefix, id, account, key), id, retention_ms)
        forget(id, record.code)
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
        redis.call('HSET', job, 'state', due_at > now and JOB_STATE.SCHEDULED or JOB_STATE.QUEUED, 'attempts', 0,
          'reschedules', 0, 'receipt_retries', 0, 'calling', 0, 'updated_at', now,
          'due_at', due_at, 'parked_reason', '')
        schedule(prefix, account, redis.call('HGET', job, 'priority'), due_at, id .. '|' .. gen)
        redis.call('RPUSH', history, event)
        keep(own_keys(prefix, id, account, key), id)
        local breaker = keys.breaker(prefix, account)
        if record.reason == 'billing' and redis.call('EXISTS', breaker) == 1 then
          -- The operator says the balance is back: probe at once, the others wait for it.
          redis.call('HSET', breaker, 'half_open', 1)
          redis.call('DEL', keys.breaker_probe(prefix, account))
        end
        forget(id, record.code)
        replayed = replayed + 1
      end
    end
  end
end
return {replayed, already_sent, expired, missing, delivered}
