-- Record a send, atomically, and learn from the answer's X-RateLimit headers. (Its parts from
-- lib/ are included above, as protocol.py declares.)
-- ARGV: the settlement's fifteen (settle.lua), wamid, retention_s, floor ('1' only in the
--   benchmarks' floor what-if: nothing learned from the headers, no records of the send: no
--   history line, expiries, ledger entry, wamid index or count of the answer)[, begin.lua's
--   ARGV for the group's next dispatch]
-- KEYS: the settlement's (settle.lua), the job's idempotency and ledger entries, the wamid's index
--   entry and its statuses that came first (early), the index of those (early_arrivals), the
--   account's halt, breaker, breaker_probe, cooldown, retries_exhausted incident (exhausted),
--   then the keys delivery.lua takes that the settlement's are not (for those early statuses);
--   then begin.lua's for the group's next dispatch, when there is one.
-- Returns {recorded, breaker_closed, exhausted_open, early_applied[, begin.lua's reply]}: the
-- wamid is recorded whoever owns the job (the message went out), indexed to the job for the
-- delivery statuses (statuses that came first are applied now); breaker_closed says whether a
-- billing breaker was open (now closed), exhausted_open whether the account has a
-- retries_exhausted incident open (it may resolve now); early_applied the statuses that came
-- first and were applied now, for the worker to count (JSON [[status, code ('' but for
-- failed)], ...], '' for none); then, when asked, the next dispatch's begin reply, in the same
-- round trip. {0, 0, 0, ''} for a job with no record (and no begin).
local looks = new_looks()
local k = named_keys(SCRIPT_KEYS, 1)
local floor = ARGV[18] == '1'
local s = settlement(k, ARGV, looks, floor)
if not s then return {0, 0, 0, ''} end
local id, account, now = s.id, s.account, s.now
local wamid = ARGV[16]
local began = tonumber(s.updated_at or '') or 0  -- set by begin
-- Times as the caller's text, flags as text: a Lua number in a command is formatted with
-- printf, which costs more than the command (bench/scripts.py); the retention formatted once.
redis.call('HSET', s.job, 'state', JOB_STATE.SENT, 'wamid', wamid, 'last_code', 'OK', 'calling', '0',
  'updated_at', s.now_text, 'sent_at', s.now_text)
-- The claim goes whoever holds it: with the ledger written, no begin lets the key be called
-- again, and a call already past its begin is not stopped by a claim.
local claimed = false  -- whether a claim of this dispatch still stood (in Redis's own time)
if s.job_gen == s.gen then
  claimed = redis.call('DEL', s.claim) == 1
  redis.call('ZREM', k.leases, s.member)
end
if s.delivery_status then
  redis.call('HDEL', s.job, 'delivery_status', 'delivery_at', 'delivery_error')
end
-- The Gateway accepted the call: it counts against its pair from this answer on.
settle_pair(s, s.now_ms, claimed)
if not floor then
  remember(s)
  local retention_ms = string.format('%d', math.max(1, math.floor(tonumber(ARGV[17]) * 1000)))
  retain(k, id, retention_ms, wamid, s.key_owned)
  redis.call('SET', k.wamid, id, 'PX', retention_ms)
  count_answer(k.answers, 'OK')
end
local breaker, exhausted, early = k.breaker, k.exhausted, k.early
local reply = {1, 0, 0, ''}
-- One look at the account's halt, breaker, cooldown, retries_exhausted incident and template
-- holds, and at the statuses that came before this send was recorded: most of the time none is
-- there, and the next job's begin, of the same account, need not look again.
local found = redis.call('EXISTS', k.halt, breaker, k.cooldown, exhausted, k.template_holds, early)
if found > 0 then
  local statuses = redis.call('LRANGE', early, 0, -1)
  local applied = {}
  for _, raw in ipairs(statuses) do
    local status = cjson.decode(raw)
    if apply_delivery(k, id, status, now)[1] == 'applied' then
      applied[#applied + 1] = {status.status, status.status == 'failed' and status.code or ''}
    end
  end
  if #applied > 0 then reply[4] = cjson.encode(applied) end
  if #statuses > 0 then
    redis.call('DEL', early)
    redis.call('ZREM', k.early_arrivals, wamid)
    found = found - 1
  end
  -- A status applied now may have held a template or paused the bulk lane: counted before it,
  -- `found` cannot say the account is quiet.
  if #applied > 0 then found = found + 1 end
end
looks.quiet[account] = found == 0
if not looks.quiet[account] then
  local probe_key = k.breaker_probe
  local since = tonumber(redis.call('HGET', breaker, 'since') or '')
  -- Only a call made after the breaker opened (the probe) says the balance is back: a call
  -- made before, settled late, must not close it (and reopen it, alerting twice). No breaker,
  -- nothing to close: its probe is only ever set while it is open, and deleted with it.
  if since and (began >= since or redis.call('GET', probe_key) == s.execution) then
    reply[2] = redis.call('DEL', breaker, probe_key) > 0 and 1 or 0
  end
  reply[3] = redis.call('EXISTS', exhausted)
  looks.quiet[account] = nil  -- the breaker may have closed: the next begin looks for itself
end
if ARGV[19] then
  local next_keys = named_keys(BEGIN_KEYS, #SCRIPT_KEYS + 1)
  for _, part in ipairs(begin(next_keys, {unpack(ARGV, 19)}, looks)) do
    reply[#reply + 1] = part
  end
end
return reply
