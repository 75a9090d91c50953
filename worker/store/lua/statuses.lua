-- Apply the delivery statuses of one webhook request, in one round trip. (keys.lua and
-- delivery.lua are included above.) A status whose wamid no job knows yet is kept for a while
-- (the send's answer may not be recorded yet): finish.lua applies it when it is.
-- ARGV: prefix, now, early_ms, early_max, then one status JSON per status (see delivery.lua).
-- Returns three values per status: result ('applied'|'stale'|'unmatched'), account, latency.
local prefix, now = ARGV[1], tonumber(ARGV[2])
local early_ms, early_max = tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for i = 5, #ARGV do
  local s = cjson.decode(ARGV[i])
  local id = redis.call('GET', keys.wamid(prefix, s.wamid))
  local r
  if id then
    r = apply_delivery(prefix, id, s, now)
  else
    local early = keys.early_statuses(prefix, s.wamid)
    redis.call('RPUSH', early, ARGV[i])
    redis.call('LTRIM', early, -early_max, -1)
    redis.call('PEXPIRE', early, early_ms)
    r = {'unmatched', '', ''}
  end
  out[#out + 1] = r[1]
  out[#out + 1] = r[2]
  out[#out + 1] = r[3]
end
return out
