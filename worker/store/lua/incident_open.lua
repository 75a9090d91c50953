-- Create a hash whole unless it exists (an incident, an account's halt): it appears at once, so
-- nobody ever sees (or resolves) a half-written one, and exactly one caller learns it made it.
-- KEYS: the hash. ARGV: field, value, field, value, ...
-- Returns 1 when this call opened the incident, 0 when it was already open.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
