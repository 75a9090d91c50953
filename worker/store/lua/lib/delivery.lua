-- Delivery statuses the Gateway reports by webhook, applied to the job sent as that wamid.
-- Included by statuses.lua (a webhook's statuses, in one round trip) and sent.lua (statuses
-- that came before the send was recorded). A status is a JSON object:
--   {wamid, status ('sent'|'delivered'|'read'|'failed'), at (Unix s), error (object or null),
--    code ('WA_<code>' for failed), action ('park'|'drop'|'reschedule'|'pause_bulk'|
--    'hold_template' for failed), description, hold_reason ('paused'|'disabled' for
--    hold_template), and the action's terms (FailureTerms in receipts.py): reason (park's),
--    delays (reschedule's, seconds), uses_attempt, limit, pause_s (pause_bulk's), slow_pair}
-- Each function takes the job's keys by name as `dk`: job, history, idempotency, ledger,
-- dead_letter, dead_letter_index, dead_letter_counts, answers (this second's answers' hash),
-- template_holds, template_held_jobs, pairs, bulk_paused, due (the job's lane) and
-- scheduled_accounts: sent.lua takes them as KEYS; statuses.lua names them with delivery_keys,
-- once it has found the job by its wamid.
-- The delivery only moves forward, sent < failed < delivered < read, so repeats and late or
-- shuffled statuses change nothing: a `failed` is final only before `delivered`. One that comes
-- after `delivered` or `read` (forged, replayed or shuffled) is ignored, as `out_of_order`; a
-- `delivered` after `failed` is recorded, even on the job parked as undelivered, and from then
-- on no replay sends the job again (`reached_delivered`).
local DELIVERY_RANK = {sent = 1, failed = 2, delivered = 3, read = 4}
local FAILED, DELIVERED, READ = 2, 3, 4
local DELIVERY_EVENT = {delivered = 'delivered', read = 'read', failed = 'delivery_failed'}

-- Whether WhatsApp delivered the job's message, so that it is never sent again: its delivery
-- says so, or (a job whose `failed` came after `delivered`, parked before such a `failed` was
-- ignored) its history (`history`, the job's key) does.
local function reached_delivered(history, status)
  if (DELIVERY_RANK[status or ''] or 0) >= DELIVERED then return true end
  if status ~= 'failed' then return false end
  for _, line in ipairs(redis.call('LRANGE', history, 0, -1)) do
    if string.find(line, '"event":"delivered"', 1, true)
      or string.find(line, '"event":"read"', 1, true) then
      return true
    end
  end
  return false
end

-- The dead letter of a job sent but not delivered: the payload moves from the job into it,
-- verbatim. `reason`: undelivered, outside_window, opted_out, or retries_exhausted.
local function park_undelivered(dk, id, job, f, s, now, reason)
  local record = cjson.encode({
    id = id, idempotency_key = f[3], account = f[2], code = s.code, group = cjson.null,
    status = cjson.null, description = s.description or '', params = {wamid = s.wamid},
    reason = reason, attempts = tonumber(f[8]) or 0,
    enqueued_at = tonumber(f[9]) or now, parked_at = now,
    expires_at = tonumber(f[10] or '') or cjson.null, wamid = s.wamid,
  })
  record = string.sub(record, 1, -2) .. ',"message":' .. (f[7] or '{}') .. '}'
  write_dead_letter(dk, id, record, s.code, now)
  count_answer(dk.answers, s.code)
  redis.call('HSET', job, 'state', JOB_STATE.PARKED, 'last_code', s.code, 'parked_reason', reason,
    'updated_at', now)
  redis.call('HDEL', job, 'message', 'to', 'pair')
  keep(dk, id)
end

-- A sent job whose delivery failed goes back to pending without a Gateway call: its send-once
-- ledger entry is deleted if it still holds this wamid (so the job may be sent again, once), its
-- records stop expiring, its message stays. Its delivery stays `failed` with its error. Returns
-- its new generation; the caller schedules or holds it.
local function reopen_undelivered(dk, id, job, s, now)
  if redis.call('GET', dk.ledger) == s.wamid then redis.call('DEL', dk.ledger) end
  keep(dk, id)
  redis.call('HSET', job, 'updated_at', now)
  return redis.call('HINCRBY', job, 'gen', 1)
end

-- A delivery failed because WhatsApp paused or disabled the job's template: the template is
-- held for the account (the first hold's time stays, the reason is this one's), and the job,
-- back to pending, is held behind it. `template`: the job's (never '').
local function hold_undelivered_template(dk, id, job, s, template, now)
  reopen_undelivered(dk, id, job, s, now)
  hold_template(dk.template_holds, template,
    {since = now, reason = s.hold_reason, code = s.code, by = 'whatsapp'})
  hold_for_template(job, dk.template_held_jobs, template, id, now)
  count_answer(dk.answers, s.code)
end

-- A failed delivery sent again later (131056, 131049). Its call was an attempt (uses_attempt)
-- or not (then it counts as a reschedule); once the attempts or reschedules reach the limit
-- the job is parked retries_exhausted instead. The n-th such reschedule waits the n-th of the
-- delays (the last beyond them). Returns the history's action and delay.
local function reschedule_undelivered(dk, id, job, f, s, now)
  local g = redis.call('HMGET', job, 'reschedules', 'receipt_retries', 'to')
  local reschedules, retries = tonumber(g[1] or '') or 0, tonumber(g[2] or '') or 0
  local attempts = tonumber(f[8] or '') or 0
  local n
  if s.uses_attempt then
    if attempts >= s.limit then
      park_undelivered(dk, id, job, f, s, now, 'retries_exhausted')
      return 'park:retries_exhausted', cjson.null
    end
    n = retries
    redis.call('HSET', job, 'receipt_retries', retries + 1)
  else
    if reschedules >= s.limit then
      park_undelivered(dk, id, job, f, s, now, 'retries_exhausted')
      return 'park:retries_exhausted', cjson.null
    end
    n = reschedules
    redis.call('HSET', job, 'reschedules', reschedules + 1, 'attempts', math.max(0, attempts - 1))
  end
  local delay = tonumber(s.delays[math.min(n + 1, #s.delays)]) or 0
  if s.slow_pair then
    -- The pair's own limit (131056) with pacing on: the pair counts as just answered, so the
    -- account's other jobs to this recipient wait the interval too.
    local to = pair_recipient(g[3], f[7])
    if to and delay > 0 then
      pair_accepted(dk.pairs, to, math.floor(now * 1000), math.ceil(delay * 1000))
    end
  end
  local gen = reopen_undelivered(dk, id, job, s, now)
  redis.call('HSET', job, 'state', delay > 0 and JOB_STATE.SCHEDULED or JOB_STATE.QUEUED, 'calling', 0,
    'last_code', s.code, 'updated_at', now, 'due_at', now + delay)
  schedule_in(dk.due, dk.scheduled_accounts, f[2], now + delay, id .. '|' .. gen)
  count_answer(dk.answers, s.code)
  return 'reschedule', delay
end

-- Meta doubts the sender (131048, 130429): the account's bulk lane waits pause_s from now (a
-- longer pause already set stays).
local function pause_bulk(key, now, pause_s)
  local until_ms = math.floor((now + pause_s) * 1000)
  if until_ms > (tonumber(redis.call('GET', key) or '') or 0) then
    redis.call('SET', key, until_ms, 'PX', math.max(1, until_ms - math.floor(now * 1000)))
  end
end

-- What a failed delivery does to its job, by its action; returns the history's action and
-- delay. A parked job's payload moves into its dead letter, a dropped one's is deleted, a
-- rescheduled one keeps it.
local function fail_delivery(dk, id, job, f, s, now)
  if s.action == 'reschedule' then
    return reschedule_undelivered(dk, id, job, f, s, now)
  end
  local action = s.action
  if s.action == 'hold_template' then
    local template = job_template(f[11], f[7])
    if template ~= '' then
      hold_undelivered_template(dk, id, job, s, template, now)
      return action, cjson.null
    end
    -- A template's failure on a message that is none (never seen): parked, so nothing else of
    -- the account is held by it.
    park_undelivered(dk, id, job, f, s, now, 'undelivered')
    action = 'park:undelivered'
  elseif s.action == 'pause_bulk' then
    -- The job itself is parked as undelivered: sending it again feeds the very signal that
    -- hurts the sender's standing; an operator replays it once the standing has recovered.
    pause_bulk(dk.bulk_paused, now, tonumber(s.pause_s) or 0)
    park_undelivered(dk, id, job, f, s, now, 'undelivered')
  elseif s.action == 'park' then
    local reason = s.reason or 'undelivered'
    park_undelivered(dk, id, job, f, s, now, reason)
    action = 'park:' .. reason
  else
    redis.call('HDEL', job, 'message', 'to', 'pair')  -- drop
  end
  return action, cjson.null
end

-- Returns {result ('applied'|'stale'|'out_of_order'), account, seconds from acceptance to
-- delivered or ''}. A job sent as this wamid is `sent`, or `parked` once a `failed` came (one
-- rescheduled is pending again: later statuses of this wamid are stale).
local function apply_delivery(dk, id, s, now)
  local job = dk.job
  local f = redis.call('HMGET', job, 'state', 'account', 'key', 'wamid', 'delivery_status',
    'sent_at', 'message', 'attempts', 'enqueued_at', 'expires_at', 'template')
  if (f[1] ~= JOB_STATE.SENT and f[1] ~= JOB_STATE.PARKED) or f[4] ~= s.wamid then
    return {'stale', f[2] or '', ''}
  end
  local current = DELIVERY_RANK[f[5] or ''] or 0
  local new = DELIVERY_RANK[s.status]
  if new == FAILED and current >= DELIVERED then return {'out_of_order', f[2], ''} end
  -- Parked, the job learns only that it was delivered after all (never parked twice).
  if not new or new <= current or (f[1] == JOB_STATE.PARKED and new < DELIVERED) then
    return {'stale', f[2], ''}
  end
  local at = tonumber(s.at)
  local error_json = ''
  if new == FAILED and s.error and s.error ~= cjson.null then
    error_json = cjson.encode(s.error)
  end
  redis.call('HSET', job, 'delivery_status', s.status, 'delivery_at', at,
    'delivery_error', error_json)
  local action, delay = cjson.null, cjson.null
  if new == FAILED then action, delay = fail_delivery(dk, id, job, f, s, now) end
  local event = DELIVERY_EVENT[s.status]
  if event then
    redis.call('RPUSH', dk.history, cjson.encode({at = at, event = event,
      code = new == FAILED and s.code or cjson.null, action = action, delay_s = delay}))
  end
  local latency = ''
  local sent_at = tonumber(f[6] or '')
  if current < DELIVERED and new >= DELIVERED and sent_at then
    latency = tostring(math.max(0, at - sent_at))
  end
  if new == READ then
    -- The record keeps metadata only: the message and its recipient go (`to`, and `pair` for
    -- pair pacing: enqueue.lua, begin.lua).
    redis.call('HDEL', job, 'message', 'to', 'pair')
  end
  return {'applied', f[2], latency}
end

-- The keys apply_delivery takes for job `id`, named from the prefix for statuses.lua, which
-- finds the job by its wamid as it runs (nil when the job has no record).
local function delivery_keys(prefix, id, now)
  local job = keys.job(prefix, id)
  local f = redis.call('HMGET', job, 'account', 'key', 'priority')
  local account, key = f[1], f[2]
  if not account then return nil end
  return {job = job, history = keys.history(prefix, id),
    idempotency = keys.idempotency(prefix, account, key), ledger = keys.ledger(prefix, account, key),
    dead_letter = keys.dead_letter(prefix, id), dead_letter_index = keys.dead_letter_index(prefix),
    dead_letter_counts = keys.dead_letter_counts(prefix),
    answers = keys.answers_in_second(prefix, math.floor(now)),
    template_holds = keys.template_holds(prefix, account),
    template_held_jobs = keys.template_held_jobs(prefix, account),
    pairs = keys.pairs(prefix, account), bulk_paused = keys.bulk_paused(prefix, account),
    due = keys.due(prefix, account, lane_of(f[3])),
    scheduled_accounts = keys.scheduled_accounts(prefix)}
end
