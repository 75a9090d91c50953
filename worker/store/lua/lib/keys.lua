-- Key names for the scripts, the twin of worker/store/keys.py (a test holds the two equal), and the
-- lifetimes of a job's keys: included at the top of every script. Variable parts are encoded
-- as in Python: '%', ':', '{' and '}' become %25, %3A, %7B and %7D, so parts never run into
-- each other.
-- Encoded once per script run: a send's scripts build a dozen keys of one account. (A table of
-- replacements, not a function: no closure and no string.format per part.)
local ENCODED = {['%'] = '%25', [':'] = '%3A', ['{'] = '%7B', ['}'] = '%7D'}
local encoded_parts = {}
local function key_part(part)
  part = tostring(part)
  local encoded = encoded_parts[part]
  if not encoded then
    encoded = string.gsub(part, '[%%:{}]', ENCODED)
    encoded_parts[part] = encoded
  end
  return encoded
end

-- KEYS from KEYS[first] on, by `names` (a script's SCRIPT_KEYS, or BEGIN_KEYS for the begin that
-- follows a send), as a table: a script's parts read its keys by name.
local function named_keys(names, first)
  local named = {}
  for i, name in ipairs(names) do named[name] = KEYS[first + i - 1] end
  return named
end

local keys = {}
function keys.job(prefix, id) return prefix .. 'job:' .. key_part(id) end
function keys.history(prefix, id) return prefix .. 'job:' .. key_part(id) .. ':history' end
function keys.due(prefix, account, lane)
  return prefix .. 'due:' .. key_part(account) .. ':' .. key_part(lane)
end
function keys.scheduled_accounts(prefix) return prefix .. 'due-accounts' end
function keys.legacy_due(prefix) return prefix .. 'due' end
function keys.dispatched(prefix, account) return prefix .. 'dispatched:' .. key_part(account) end
function keys.leases(prefix) return prefix .. 'leases' end
function keys.enqueued_count(prefix) return prefix .. 'stats:enqueued' end
function keys.answers_in_second(prefix, second) return prefix .. 'stats:answers:' .. second end
function keys.held(prefix, account) return prefix .. 'held:' .. key_part(account) end
function keys.template_holds(prefix, account)
  return prefix .. 'templates-held:' .. key_part(account)
end
function keys.template_held_jobs(prefix, account)
  return prefix .. 'templates-held:' .. key_part(account) .. ':jobs'
end
function keys.idempotency(prefix, account, key)
  return prefix .. 'idem:' .. key_part(account) .. ':' .. key_part(key)
end
function keys.batch(prefix, accounts, key)
  return prefix .. 'batch:' .. key_part(accounts) .. ':' .. key_part(key)
end
function keys.ledger(prefix, account, key)
  return prefix .. 'sent:' .. key_part(account) .. ':' .. key_part(key)
end
function keys.claim(prefix, account, key)
  return prefix .. 'claim:' .. key_part(account) .. ':' .. key_part(key)
end
function keys.wamid(prefix, wamid) return prefix .. 'wamid:' .. key_part(wamid) end
function keys.early_statuses(prefix, wamid)
  return prefix .. 'wamid:' .. key_part(wamid) .. ':early'
end
function keys.early_arrivals(prefix) return prefix .. 'early-arrivals' end
function keys.halt(prefix, account) return prefix .. 'halt:' .. key_part(account) end
function keys.breaker(prefix, account) return prefix .. 'breaker:' .. key_part(account) end
function keys.halt_probe(prefix, account)
  return prefix .. 'halt:' .. key_part(account) .. ':probe'
end
function keys.breaker_probe(prefix, account)
  return prefix .. 'breaker:' .. key_part(account) .. ':probe'
end
function keys.switched(prefix) return prefix .. 'switched' end
function keys.cooldown(prefix, account) return prefix .. 'cooldown:' .. key_part(account) end
function keys.bulk_paused(prefix, account)
  return prefix .. 'bulk-paused:' .. key_part(account)
end
function keys.window(prefix, account, span)
  return prefix .. 'rate:' .. key_part(account) .. ':' .. key_part(span)
end
function keys.pairs(prefix, account) return prefix .. 'pairs:' .. key_part(account) end
function keys.limits(prefix, account) return prefix .. 'rate:' .. key_part(account) .. ':limits' end
function keys.dead_letter(prefix, id) return prefix .. 'dlq:record:' .. key_part(id) end
function keys.dead_letter_index(prefix) return prefix .. 'dlq:index' end
function keys.dead_letter_counts(prefix) return prefix .. 'dlq:counts' end
function keys.incident(prefix, kind, account)
  return prefix .. 'incident:' .. key_part(kind) .. ':' .. key_part(account)
end
function keys.exhausted(prefix, account) return prefix .. 'exhausted:' .. key_part(account) end
function keys.workers(prefix) return prefix .. 'workers' end
function keys.worker_info(prefix) return prefix .. 'workers:info' end
function keys.replicated(prefix) return prefix .. 'replicated' end
function keys.pending_kept(prefix) return prefix .. 'pending-kept' end
function keys.console_session(prefix, digest)
  return prefix .. 'console:session:' .. key_part(digest)
end
function keys.console_login_failed(prefix, client)
  return prefix .. 'console:login-failed:' .. key_part(client)
end
function keys.console_login_slot(prefix, client)
  return prefix .. 'console:login-slot:' .. key_part(client)
end
function keys.console_replay(prefix, run_id)
  return prefix .. 'console:replay:' .. key_part(run_id)
end
function keys.console_chart(prefix, bucket)
  return prefix .. 'console:chart:' .. bucket
end
function keys.console_replay_jobs(prefix, run_id)
  return prefix .. 'console:replay:' .. key_part(run_id) .. ':jobs'
end

-- The schedule: an account's due jobs wait in one lane per priority (high, normal, bulk; a job
-- without one is normal), and the account is named in the set the pump goes through.
local LANES = {'high', 'normal', 'bulk'}
local function lane_of(priority)
  if priority == 'high' or priority == 'bulk' then return priority end
  return 'normal'
end

-- Whether the pump may take the account's jobs of this lane now: the bulk lane waits while
-- paused (Meta doubted the sender's standing); high and normal never do.
local function lane_open(prefix, account, lane, now_ms)
  if lane ~= 'bulk' then return true end
  return (tonumber(redis.call('GET', keys.bulk_paused(prefix, account)) or '') or 0) <= now_ms
end

-- Schedule `member` at `at`: `due` is the lane the job's priority names, `accounts` the set of
-- scheduled accounts, where the account is named.
local function schedule_in(due, accounts, account, at, member)
  redis.call('ZADD', due, at, member)
  redis.call('SADD', accounts, account)
end

-- A job's own keys, named from a prefix, for the scripts that still name keys so: the table the
-- lifetimes below take (job, history, idempotency, ledger). Scripts that take their keys as
-- KEYS pass their named_keys table, which holds them by the same names.
local function own_keys(prefix, id, account, key)
  return {job = keys.job(prefix, id), history = keys.history(prefix, id),
    idempotency = keys.idempotency(prefix, account, key), ledger = keys.ledger(prefix, account, key)}
end

-- Lifetimes, of the job `id` whose own keys are `own` (see own_keys). A pending job (queued,
-- scheduled, held, parked) has no expiry at all; a settled one (sent, or its dead letter purged)
-- ages out: its record, history, idempotency entry and ledger entry expire retention_ms (a
-- number or its text) from now. Given the wamid, the ledger entry is written now. The
-- idempotency entry is the job's own to expire only when it names the job: `key_owned` (the
-- job's field of that name, '1' or '0') says whether it does, as the job was created or last
-- kept; a job written before that field has its entry read.
local function retain(own, id, retention_ms, wamid, key_owned)
  redis.call('PEXPIRE', own.job, retention_ms)
  redis.call('PEXPIRE', own.history, retention_ms)
  if wamid then
    redis.call('SET', own.ledger, wamid, 'PX', retention_ms)
  else
    redis.call('PEXPIRE', own.ledger, retention_ms)
  end
  if not key_owned then
    key_owned = redis.call('GET', own.idempotency) == id and '1' or '0'
  end
  if key_owned == '1' then redis.call('PEXPIRE', own.idempotency, retention_ms) end
end

-- A job goes back to pending (a replay, a resume): nothing of it may expire. Its idempotency
-- entry is its own again unless another job's holds the key.
local function keep(own, id)
  redis.call('PERSIST', own.job)
  redis.call('PERSIST', own.history)
  local first = redis.call('GET', own.idempotency)
  if first == id then
    redis.call('PERSIST', own.idempotency)
  elseif not first then
    redis.call('SET', own.idempotency, id)
  end
  redis.call('HSET', own.job, 'key_owned', (not first or first == id) and '1' or '0')
end
