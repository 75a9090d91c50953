-- Delivery statuses the Gateway reports by webhook, applied to the job sent as that wamid.
-- Included by statuses.lua (a webhook's statuses, in one round trip) and sent.lua (statuses
-- that came before the send was recorded). A status is a JSON object:
--   {wamid, status ('sent'|'delivered'|'read'|'failed'), at (Unix s), error (object or null),
--    code ('WA_<code>' for failed), action ('park'|'drop'|'hold_template' for failed),
--    description, hold_reason ('paused'|'disabled' for hold_template)}
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
-- ignored) its history does.
local function reached_delivered(prefix, id, status)
  if (DELIVERY_RANK[status or ''] or 0) >= DELIVERED then return true end
  if status ~= 'failed' then return false end
  for _, line in ipairs(redis.call('LRANGE', keys.history(prefix, id), 0, -1)) do
    if string.find(line, '"event":"delivered"', 1, true)
      or string.find(line, '"event":"read"', 1, true) then
      return true
    end
  end
  return false
end

-- The dead letter of an undelivered job: the payload moves from the job into it, verbatim.
local function park_undelivered(prefix, id, job, f, s, now)
  local record = cjson.encode({
    id = id, idempotency_key = f[3], account = f[2], code = s.code, group = cjson.null,
    status = cjson.null, description = s.description or '', params = {wamid = s.wamid},
    reason = 'undelivered', attempts = tonumber(f[8]) or 0,
    enqueued_at = tonumber(f[9]) or now, parked_at = now,
    expires_at = tonumber(f[10] or '') or cjson.null, wamid = s.wamid,
  })
  record = string.sub(record, 1, -2) .. ',"message":' .. (f[7] or '{}') .. '}'
  write_dead_letter(prefix, id, record, s.code, now)
  count_answer(prefix, s.code, now)
  redis.call('HSET', job, 'state', 'parked', 'last_code', s.code, 'parked_reason', 'undelivered',
    'updated_at', now)
  keep(own_keys(prefix, id, f[2], f[3]), id)
end

-- A sent job whose delivery failed goes back to pending without a Gateway call: its send-once
-- ledger entry is deleted if it still holds this wamid (so the job may be sent again, once), its
-- records stop expiring, its message stays. Its delivery stays `failed` with its error. Returns
-- its new generation; the caller schedules or holds it.
local function reopen_undelivered(prefix, id, job, f, s, now)
  local own = own_keys(prefix, id, f[2], f[3])
  if redis.call('GET', own.ledger) == s.wamid then redis.call('DEL', own.ledger) end
  keep(own, id)
  redis.call('HSET', job, 'updated_at', now)
  return redis.call('HINCRBY', job, 'gen', 1)
end

-- A delivery failed because WhatsApp paused or disabled the job's template: the template is
-- held for the account (unless it is already; the first hold's time stays), and the job, back to
-- pending, is held behind it. `template`: the job's (never '').
local function hold_undelivered_template(prefix, id, job, f, s, template, now)
  reopen_undelivered(prefix, id, job, f, s, now)
  local account = f[2]
  local holds = keys.template_holds(prefix, account)
  if redis.call('HEXISTS', holds, template) == 0 then
    redis.call('HSET', holds, template, cjson.encode({since = now, reason = s.hold_reason,
      code = s.code, by = 'whatsapp'}))
  end
  hold_for_template(job, keys.template_held_jobs(prefix, account), template, id, now)
end

-- Returns {result ('applied'|'stale'|'out_of_order'), account, seconds from acceptance to
-- delivered or ''}. A job sent as this wamid is `sent`, or `parked` once a `failed` came.
local function apply_delivery(prefix, id, s, now)
  local job = keys.job(prefix, id)
  local f = redis.call('HMGET', job, 'state', 'account', 'key', 'wamid', 'delivery_status',
    'sent_at', 'message', 'attempts', 'enqueued_at', 'expires_at', 'template')
  if (f[1] ~= 'sent' and f[1] ~= 'parked') or f[4] ~= s.wamid then
    return {'stale', f[2] or '', ''}
  end
  local current = DELIVERY_RANK[f[5] or ''] or 0
  local new = DELIVERY_RANK[s.status]
  if new == FAILED and current >= DELIVERED then return {'out_of_order', f[2], ''} end
  -- Parked, the job learns only that it was delivered after all (never parked twice).
  if not new or new <= current or (f[1] == 'parked' and new < DELIVERED) then
    return {'stale', f[2], ''}
  end
  local at = tonumber(s.at)
  local error_json = ''
  if new == FAILED and s.error and s.error ~= cjson.null then
    error_json = cjson.encode(s.error)
  end
  redis.call('HSET', job, 'delivery_status', s.status, 'delivery_at', at,
    'delivery_error', error_json)
  local event = DELIVERY_EVENT[s.status]
  if event then
    local action = cjson.null
    if new == FAILED then action = s.action == 'park' and 'park:undelivered' or s.action end
    redis.call('RPUSH', keys.history(prefix, id), cjson.encode({at = at, event = event,
      code = new == FAILED and s.code or cjson.null, action = action, delay_s = cjson.null}))
  end
  local latency = ''
  local sent_at = tonumber(f[6] or '')
  if current < DELIVERED and new >= DELIVERED and sent_at then
    latency = tostring(math.max(0, at - sent_at))
  end
  -- The message and its recipient go (`to`, and `pair` for pair pacing: enqueue.lua, begin.lua)
  if new == READ then
    redis.call('HDEL', job, 'message', 'to', 'pair')  -- read: the record keeps metadata only
  elseif new == FAILED then
    -- A template's failure on a message that is none (never seen): parked, so nothing else of
    -- the account is held by it.
    local template = s.action == 'hold_template' and job_template(f[11], f[7]) or ''
    if template ~= '' then
      hold_undelivered_template(prefix, id, job, f, s, template, now)
      return {'applied', f[2], latency}
    end
    if s.action ~= 'drop' then park_undelivered(prefix, id, job, f, s, now) end
    redis.call('HDEL', job, 'message', 'to', 'pair')
  end
  return {'applied', f[2], latency}
end
