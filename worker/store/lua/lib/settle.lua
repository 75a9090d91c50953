-- What every settlement of a job (sent.lua, retry.lua, park.lua, hold.lua) does first: read the
-- job, learn from the answer's X-RateLimit headers, and name its claim. (Uses keys.lua and
-- ratelimit.lua.)
-- ARGV (every settlement's first twelve): prefix, id, gen, now, execution, event_json,
--   sec_window_ms, min_window_ms, sec_limit, sec_remaining, min_limit, min_remaining
--   ('' for headers that were absent)
-- `looks`: what the script run looked up already (see ratelimit.lua); `floor`: true only in the
-- benchmarks' floor what-if, where nothing is learned from the headers.
-- Returns the settlement as a table, or nil when the job has no record.
local function settlement(ARGV, looks, floor)
  local s = {prefix = ARGV[1], id = ARGV[2], gen = ARGV[3], now = tonumber(ARGV[4]),
    now_text = ARGV[4], execution = ARGV[5], event = ARGV[6]}
  s.job = keys.job(s.prefix, s.id)
  local f = redis.call('HMGET', s.job, 'gen', 'state', 'account', 'key', 'updated_at',
    'delivery_status', 'priority', 'key_owned', 'pair')
  if not f[1] then return nil end
  s.job_gen, s.state, s.account, s.key = f[1], f[2], f[3], f[4]
  s.updated_at, s.delivery_status, s.priority, s.key_owned = f[5], f[6], f[7], f[8]
  s.pair = f[9]  -- the pair the call reserved (pairs.lua's pair_field), if it did
  s.now_ms = math.floor(s.now * 1000)
  s.member = s.id .. '|' .. s.gen
  if not floor then
    learn(rate_keys(s.prefix, s.account), s.now_ms, {
      sec = {tonumber(ARGV[7]), tonumber(ARGV[9]), tonumber(ARGV[10])},
      min = {tonumber(ARGV[8]), tonumber(ARGV[11]), tonumber(ARGV[12])},
    }, s.member, looks)
  end
  s.claim = keys.claim(s.prefix, s.account, s.key)
  return s
end

-- The call's pair reservation ends (pairs.lua): confirmed as accepted at accepted_ms, or,
-- without, given back (the Gateway refused or failed the call, or it was not made). `claimed`:
-- the settlement released the call's claim, still standing. The job's field `pair` stays: a job
-- once paced looks for its reservation at each settlement (one HGET).
local function settle_pair(s, accepted_ms, claimed)
  if s.pair then
    pair_settle(keys.pairs(s.prefix, s.account), s.pair, s.id, accepted_ms, claimed)
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
  redis.call('ZREM', keys.leases(s.prefix), s.member)
  settle_pair(s)
  return true
end

-- The settlement's line in the job's history.
local function remember(s)
  redis.call('RPUSH', keys.history(s.prefix, s.id), s.event)
end
