-- Apply the delivery statuses of one webhook request, in one round trip. (Its parts from lib/
-- are included above, as protocol.py declares.) A status whose wamid no job knows yet is kept for a while
-- (the send's answer may not be recorded yet): sent.lua applies it when it is. Such statuses
-- are kept early_ms, at most early_max a wamid and for at most early_cap wamids in all (the
-- least recently heard of go first): whoever holds the webhook secret cannot fill Redis.
-- ARGV: prefix, now, early_ms, early_max, early_cap, then one status JSON per status (see
-- delivery.lua).
-- Returns three values per status: result ('applied'|'stale'|'out_of_order'|'unmatched'),
-- account, latency; then how many wamids' early statuses were dropped for the cap.
local prefix, now = ARGV[1], tonumber(ARGV[2])
local early_ms, early_max, early_cap = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local now_ms = math.floor(now * 1000)
local arrivals = keys.early_arrivals(prefix)
local out = {}
local kept = 0
for i = 6, #ARGV do
  local s = cjson.decode(ARGV[i])
  local id = redis.call('GET', keys.wamid(prefix, s.wamid))
  local r
  local dk = id and delivery_keys(prefix, id, now)
  if dk then
    r = apply_delivery(dk, id, s, now)
  elseif id then
    r = {'stale', '', ''}  -- the job's record is gone
  else
    local early = keys.early_statuses(prefix, s.wamid)
    redis.call('RPUSH', early, ARGV[i])
    redis.call('LTRIM', early, -early_max, -1)
    redis.call('PEXPIRE', early, early_ms)
    redis.call('ZADD', arrivals, now_ms, s.wamid)
    kept = kept + 1
    r = {'unmatched', '', ''}
  end
  out[#out + 1] = r[1]
  out[#out + 1] = r[2]
  out[#out + 1] = r[3]
end

-- The index follows the lists' lifetimes (the older ones have expired), then the cap: the
-- oldest lists beyond it are deleted, a few hundred a command.
local dropped = 0
if kept > 0 then
  redis.call('ZREMRANGEBYSCORE', arrivals, '-inf', now_ms - early_ms)
  local excess = redis.call('ZCARD', arrivals) - early_cap
  if excess > 0 then
    local oldest = redis.call('ZRANGE', arrivals, 0, excess - 1)
    redis.call('ZREMRANGEBYRANK', arrivals, 0, excess - 1)
    for first = 1, #oldest, 500 do
      local names = {}
      for j = first, math.min(first + 499, #oldest) do
        names[#names + 1] = keys.early_statuses(prefix, oldest[j])
      end
      redis.call('DEL', unpack(names))
    end
    dropped = #oldest
  end
  redis.call('PEXPIRE', arrivals, early_ms)
end
out[#out + 1] = dropped
return out
