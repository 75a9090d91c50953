-- Open an incident unless one is open: the whole hash appears at once, so a worker never sees
-- (or resolves) a half-written incident, and exactly one caller learns it opened it.
-- KEYS: the incident hash. ARGV: field, value, field, value, ...
-- Returns 1 when this call opened the incident, 0 when it was already open.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
