-- Hold a template for an account (WhatsApp paused or disabled it, or an operator held it): from
-- now on each of the account's jobs using it is held at its begin instead of calling the
-- Gateway. A template held already keeps the time of its first hold; the rest (reason, code,
-- by) is the latest hold's.
-- KEYS: the account's template holds (hash)
-- ARGV: template ('<name>|<language>', parts encoded), hold_json ({since, reason, code, by})
-- Returns 1 when this call held the template, 0 when it was held already.
local before = redis.call('HGET', KEYS[1], ARGV[1])
local hold = cjson.decode(ARGV[2])
if before then
  local ok, first = pcall(cjson.decode, before)
  if ok and type(first) == 'table' and first.since then hold.since = first.since end
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(hold))
return before and 0 or 1
