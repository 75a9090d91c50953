-- One Gateway call for a claimed job: wait out the account's cooldown and both sliding windows,
-- then count the call, mark the job as calling and renew its claim for the call's duration.
-- ARGV: prefix, account, now_ms, sec_limit, min_limit, id, gen, execution, lease_ms
-- Returns 0 when granted, the milliseconds to wait otherwise, -1 when the claim was lost.
local prefix, account, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local sec_limit, min_limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local id, gen, execution, lease_ms = ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
local job = prefix .. 'job:' .. id
local f = redis.call('HMGET', job, 'key', 'gen')
local claim = prefix .. 'claim:' .. account .. ':' .. (f[1] or '')
if f[2] ~= gen or redis.call('GET', claim) ~= execution then return -1 end

local cooldown = tonumber(redis.call('GET', prefix .. 'cooldown:' .. account) or '0')
if cooldown > now then return math.ceil(cooldown - now) end

local base = prefix .. 'rate:' .. account
local sec, min = base .. ':sec', base .. ':min'
redis.call('ZREMRANGEBYSCORE', sec, '-inf', now - 1000)
redis.call('ZREMRANGEBYSCORE', min, '-inf', now - 60000)
if redis.call('ZCARD', sec) >= sec_limit then
  local oldest = redis.call('ZRANGE', sec, 0, 0, 'WITHSCORES')
  return math.max(1, math.ceil(tonumber(oldest[2]) + 1000 - now))
end
if redis.call('ZCARD', min) >= min_limit then
  local oldest = redis.call('ZRANGE', min, 0, 0, 'WITHSCORES')
  return math.max(1, math.ceil(tonumber(oldest[2]) + 60000 - now))
end
local seq = redis.call('INCR', base .. ':seq')
redis.call('ZADD', sec, now, seq)
redis.call('ZADD', min, now, seq)
redis.call('PEXPIRE', sec, 2000)
redis.call('PEXPIRE', min, 61000)
redis.call('PEXPIRE', base .. ':seq', 61000)

redis.call('HSET', job, 'calling', 1)
redis.call('HINCRBY', job, 'attempts', 1)
redis.call('PEXPIRE', claim, lease_ms)
redis.call('ZADD', prefix .. 'leases', (now + lease_ms) / 1000, id .. '|' .. gen)
return 0
