-- Reserve the account's next call slot in both sliding windows, first come first served.
-- Slots are handed out in time order (never before the last one reserved), each where both
-- windows allow it, so waiting workers line up instead of polling; one round trip each.
-- ARGV: prefix, account, now_ms, sec_limit, min_limit, id, gen, execution, lease_ms,
--       max_wait_ms, sec_window_ms, min_window_ms
-- Returns {status, wait_ms}: status 1 = slot reserved (call after wait_ms; the job is marked
-- calling and its claim renewed), 0 = not reserved (the wait is longer than max_wait_ms),
-- -1 = this execution no longer holds the job.
local prefix, account, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local id, gen, execution, lease_ms = ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
local max_wait, sec_window, min_window = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local job = prefix .. 'job:' .. id
local f = redis.call('HMGET', job, 'key', 'gen')
local claim = prefix .. 'claim:' .. account .. ':' .. (f[1] or '')
if f[2] ~= gen or redis.call('GET', claim) ~= execution then return {-1, 0} end

local base = prefix .. 'rate:' .. account
local learned = redis.call('HMGET', base .. ':limits', 'sec', 'min')
local sec_limit = tonumber(learned[1]) or tonumber(ARGV[4])
local min_limit = tonumber(learned[2]) or tonumber(ARGV[5])
local sec, min = base .. ':sec', base .. ':min'
redis.call('ZREMRANGEBYSCORE', sec, '-inf', now - sec_window)
redis.call('ZREMRANGEBYSCORE', min, '-inf', now - min_window)

local slot = math.max(now, tonumber(redis.call('GET', prefix .. 'cooldown:' .. account) or '0'))
local function after(window, limit, span)
  local last = redis.call('ZRANGE', window, -1, -1, 'WITHSCORES')
  if last[2] then slot = math.max(slot, tonumber(last[2])) end
  local kth = redis.call('ZRANGE', window, -limit, -limit, 'WITHSCORES')
  if kth[2] then slot = math.max(slot, tonumber(kth[2]) + span) end
end
after(sec, sec_limit, sec_window)
after(min, min_limit, min_window)

local wait = slot - now
if wait > max_wait then return {0, math.ceil(wait)} end
local seq = redis.call('INCR', base .. ':seq')
redis.call('ZADD', sec, slot, seq)
redis.call('ZADD', min, slot, seq)
redis.call('PEXPIRE', sec, sec_window + math.ceil(wait) + 1000)
redis.call('PEXPIRE', min, min_window + math.ceil(wait) + 1000)

redis.call('HSET', job, 'calling', 1)
redis.call('HINCRBY', job, 'attempts', 1)
redis.call('PEXPIRE', claim, lease_ms + math.ceil(wait))
redis.call('ZADD', prefix .. 'leases', (slot + lease_ms) / 1000, id .. '|' .. gen)
return {1, math.ceil(wait)}
