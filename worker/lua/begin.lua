-- Decide whether this dispatch of a job may go to the Gateway, and claim it if so.
-- ARGV: prefix, id, gen, now, lease_s, execution, probe_interval_s
-- Returns {verdict, detail}:
--   stale      another dispatch or a later state owns the job: drop this one
--   busy       a live execution holds the job or its key: drop (the schedule brings it back)
--   duplicate  the key was already sent (detail: wamid); the job is marked sent
--   lost       an execution died during its Gateway call: outcome unknown (job claimed)
--   expired    past expires_at (job claimed)
--   held       the account is halted; the job moved to the hold list
--   breaker    billing breaker open: park without calling (job claimed)
--   wait       billing breaker half-open, a probe is out: try again shortly (job claimed)
--   go         call the Gateway (detail: '1' when this call is the breaker's probe)
local prefix, id, gen, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local lease_ms, execution = math.floor(tonumber(ARGV[5]) * 1000), ARGV[6]
local probe_ms = math.floor(tonumber(ARGV[7]) * 1000)
local job = prefix .. 'job:' .. id
local member = id .. '|' .. gen
local due, leases = prefix .. 'due', prefix .. 'leases'
local f = redis.call('HMGET', job, 'gen', 'state', 'account', 'key', 'calling', 'expires_at')
local state, account, key = f[2], f[3], f[4]
if not f[1] or f[1] ~= gen or state == 'sent' or state == 'parked' or state == 'held' then
  -- Nothing may come of this dispatch: make sure it is not dispatched again.
  redis.call('ZREM', leases, member)
  return {'stale', ''}
end
local claim = prefix .. 'claim:' .. account .. ':' .. key
local history = job .. ':history'

local function event(name, code)
  redis.call('RPUSH', history, cjson.encode({at = now, event = name, code = code}))
end

if redis.call('EXISTS', claim) == 1 then return {'busy', ''} end

local wamid = redis.call('GET', prefix .. 'sent:' .. account .. ':' .. key)
if wamid then
  redis.call('HSET', job, 'state', 'sent', 'wamid', wamid, 'calling', 0, 'updated_at', now)
  redis.call('ZREM', due, member)
  redis.call('ZREM', leases, member)
  event('duplicate', 'OK')
  return {'duplicate', wamid}
end

local function take()
  redis.call('SET', claim, execution, 'PX', lease_ms)
  redis.call('ZADD', leases, now + lease_ms / 1000, member)
end

if state == 'sending' and f[5] == '1' then
  take()
  return {'lost', ''}
end

if f[6] ~= '' and tonumber(f[6]) <= now then
  take()
  return {'expired', ''}
end

if redis.call('EXISTS', prefix .. 'halt:' .. account) == 1 then
  redis.call('HINCRBY', job, 'gen', 1)
  redis.call('HSET', job, 'state', 'held', 'updated_at', now)
  redis.call('ZREM', due, member)
  redis.call('ZREM', leases, member)
  redis.call('RPUSH', prefix .. 'held:' .. account, id)
  event('held', '')
  return {'held', ''}
end

local probe = '0'
local breaker = prefix .. 'breaker:' .. account
if redis.call('EXISTS', breaker) == 1 then
  if redis.call('SET', breaker .. ':probe', execution, 'NX', 'PX', probe_ms) then
    probe = '1'
  elseif redis.call('HGET', breaker, 'half_open') == '1' then
    take()
    return {'wait', ''}
  else
    take()
    return {'breaker', ''}
  end
end

take()
redis.call('HSET', job, 'state', 'sending', 'updated_at', now)
return {'go', probe}
