-- Take jobs for dispatch: for each account its share (quota) of what is due, never more than its
-- limiter can take within the horizon as this script runs (another worker's pump may have just
-- dispatched), high lane first, then normal, then bulk (unless paused: lane_open in keys.lua),
-- each in the order they fell due; then, with room left, dispatches whose lease ran out (a lost
-- broker message, a worker that died).
-- Each taken job moves to the leases with score now + lease, so a dispatch that never gets
-- settled comes back by itself, and is counted as dispatched for its account until it begins.
-- ARGV: prefix, now_s, horizon_s, the limits (8, see limits_from in ratelimit.lua), lease_s,
--       count_s (how long a dispatch not begun counts), room, then account, quota, ...
-- Returns {members taken, runs, paces, addresses}: runs are how many of the members, in order,
-- are one account's (a dispatch whose lease ran out is a run of its own); paces, two per run,
-- when its first job may expect its slot (ms from now) and the gap between the account's slots
-- (ms), as text: the pump orders the jobs by the slot each may expect; addresses, three per
-- member, its job's account, idempotency key and priority ('' for a job gone, or a field it
-- lacks): the dispatch carries them, so a worker names the job's keys without reading first.
local prefix, now = ARGV[1], tonumber(ARGV[2])
local now_ms, horizon_ms = math.floor(now * 1000), math.floor(tonumber(ARGV[3]) * 1000)
local limits_of = limits_from(ARGV, 4)
local looks = new_looks()
local lease, count_s, room = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14])
local leases = keys.leases(prefix)
local taken, runs, paces, addresses = {}, {}, {}, {}

-- A variadic command's arguments a thousand at a time (ZADD's pairs stay whole).
local function batched(command, key, arguments)
  for first = 1, #arguments, 1000 do
    redis.call(command, key, unpack(arguments, first, math.min(first + 999, #arguments)))
  end
end

-- Take `member`; returns its job's account (nil for a job gone).
local function take(member)
  local job = keys.job(prefix, string.match(member, '^(.*)|'))
  local f = redis.call('HMGET', job, 'state', 'account', 'key', 'priority')
  if f[1] == JOB_STATE.SCHEDULED then
    redis.call('HSET', job, 'state', JOB_STATE.QUEUED)
  end
  taken[#taken + 1] = member
  addresses[#addresses + 1] = f[2] or ''
  addresses[#addresses + 1] = f[3] or ''
  addresses[#addresses + 1] = f[4] or ''
  return f[2] or nil
end

-- ZADD's arguments for these members, all at one score.
local function scored(members, score)
  local entries = {}
  for _, member in ipairs(members) do
    entries[#entries + 1] = score
    entries[#entries + 1] = member
  end
  return entries
end

local function count(account, members)
  batched('ZADD', keys.dispatched(prefix, account), scored(members, now + count_s))
end

-- A run of `length` members, its first expecting its slot `first_ms` from now, `gap_ms` apart.
local function add_run(length, first_ms, gap_ms)
  runs[#runs + 1] = length
  paces[#paces + 1] = string.format('%d', first_ms)
  paces[#paces + 1] = string.format('%.3f', gap_ms)
end

for i = 15, #ARGV, 2 do
  local account = ARGV[i]
  local ran_before = #taken
  local can, first_ms, gap_ms = budget(rate_keys(prefix, account), account, now_ms, limits_of(account), horizon_ms,
    looks)
  local left = math.min(tonumber(ARGV[i + 1]), room - #taken, can)
  for _, lane in ipairs(LANES) do
    if left <= 0 then break end
    if lane_open(prefix, account, lane, now_ms) then
      local due = keys.due(prefix, account, lane)
      local members = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, left)
      batched('ZREM', due, members)
      for _, member in ipairs(members) do take(member) end
      count(account, members)
      left = left - #members
    end
  end
  local run = #taken - ran_before
  if run > 0 then add_run(run, first_ms, gap_ms) end
end
if #taken < room then
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, room - #taken)
  -- Per account, when the first of its dispatches taken again may expect its slot, the gap,
  -- and how many were taken: a dozen dispatches of one account lost with a worker go out
  -- spread over the batch like any other run, not all at its head.
  local again = {}
  for _, member in ipairs(expired) do
    local account = take(member)
    if account then
      local pace = again[account]
      if not pace then
        local _, first_ms, gap_ms = budget(rate_keys(prefix, account), account, now_ms, limits_of(account),
          horizon_ms, looks)
        pace = {first_ms, gap_ms, 0}
        again[account] = pace
      end
      add_run(1, pace[1] + pace[3] * pace[2], pace[2])
      pace[3] = pace[3] + 1
      count(account, {member})
    else
      add_run(1, 0, 0)  -- a job gone: its dispatch is dropped at once
    end
  end
end
batched('ZADD', leases, scored(taken, now + lease))
return {taken, runs, paces, addresses}
