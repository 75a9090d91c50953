-- What every settlement of a job (sent.lua, retry.lua, park.lua, hold.lua) does first: read the
-- job, check that it is the job its keys were named for, learn from the answer's
-- X-RateLimit headers and place its call where it reached the Gateway (ratelimit.lua's arrived).
-- (Uses keys.lua, ratelimit.lua and pairs.lua.)
-- `k`: the script's keys by name (named_keys), every settlement's first ones SETTLEMENT_KEYS in
--   protocol.py: job, history, claim, leases, pairs, the limiter's limits, sec_window and
--   min_window, answers (the hash counting this second's answers, see answers.lua)
-- ARGV (every settlement's first fifteen): id, gen, now, execution, event_json, then the job's
--   account, idempotency key and priority its keys were named for, then sec_window_ms,
--   min_window_ms, sec_limit, sec_remaining, min_limit, min_remaining ('' for headers that were
--   absent), then arrival_ms: when the call reached the Gateway, in ms after its slot, as the
--   worker reckons it ('' when no call was made)
-- `looks`: what the script run looked up already (see ratelimit.lua); `floor`: true only in the
-- benchmarks' floor what-if, where nothing is learned from the headers.
-- Returns the settlement as a table, or nil when the job has no record.
local function settlement(k, ARGV, looks, floor)
  local s = {k = k, id = ARGV[1], gen = ARGV[2], now = tonumber(ARGV[3]), now_text = ARGV[3],
    execution = ARGV[4], event = ARGV[5], job = k.job, claim = k.claim}
  local f = redis.call('HMGET', s.job, 'gen', 'state', 'account', 'key', 'updated_at',
    'delivery_status', 'priority', 'key_owned', 'pair', 'slot')
  if not f[1] then return nil end
  s.job_gen, s.state, s.account, s.key = f[1], f[2], f[3], f[4]
  s.updated_at, s.delivery_status, s.priority, s.key_owned = f[5], f[6], f[7], f[8]
  s.pair = f[9]  -- the pair the call reserved (pairs.lua's pair_field), if it did
  if s.account ~= ARGV[6] or s.key ~= ARGV[7] or (s.priority or '') ~= ARGV[8] then
    error('settlement: the keys given were named for another job than ' .. s.id)
  end
  s.now_ms = math.floor(s.now * 1000)
  s.member = s.id .. '|' .. s.gen
  if not floor then
    learn(k, s.now_ms, {
      sec = {tonumber(ARGV[9]), tonumber(ARGV[11]), tonumber(ARGV[12])},
      min = {tonumber(ARGV[10]), tonumber(ARGV[13]), tonumber(ARGV[14])},
    }, s.member, looks)
    -- Only this generation's call: a settlement of an earlier one, sent late, would find the
    -- slot of the call after it (moved later, an entry can only slow the account a little).
    local arrival_ms = tonumber(ARGV[15])
    if arrival_ms and f[10] and s.job_gen == s.gen then
      arrived(k, f[10], arrival_ms, s.now_ms)
    end
  end
  return s
end

-- The call's pair reservation ends (pairs.lua): confirmed as accepted at accepted_ms, or,
-- without, given back (the Gateway refused or failed the call, or it was not made). `claimed`:
-- the settlement released the call's claim, still standing. The job's field `pair` stays: a job
-- once paced looks for its reservation at each settlement (one HGET).
local function settle_pair(s, accepted_ms, claimed)
  if s.pair then
    pair_settle(s.k.pairs, s.pair, s.id, accepted_ms, claimed)
  end
end

-- Whether the settling execution still owns the job (its generation, not settled, its claim);
-- if so the claim and the lease are released, and the pair its call reserved given back: only
-- a send (sent.lua) counts against the pair.
local function release_owned(s)
  local settled = SETTLED_STATES[s.state]
  if s.job_gen ~= s.gen or settled or redis.call('GET', s.claim) ~= s.execution then
    return false
  end
  redis.call('DEL', s.claim)
  redis.call('ZREM', s.k.leases, s.member)
  settle_pair(s)
  return true
end

-- The settlement's line in the job's history.
local function remember(s)
  redis.call('RPUSH', s.k.history, s.event)
end
