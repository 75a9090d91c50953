-- Remove dead letters for good (the job records keep their parked state until they expire).
-- ARGV: prefix, id...   Returns the number removed.
local prefix = ARGV[1]
local removed = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local record_key = keys.dead_letter(prefix, id)
  local raw = redis.call('GET', record_key)
  redis.call('ZREM', keys.dead_letter_index(prefix), id)
  if raw then
    local code = cjson.decode(raw).code
    redis.call('DEL', record_key)
    if redis.call('HINCRBY', keys.dead_letter_counts(prefix), code, -1) <= 0 then
      redis.call('HDEL', keys.dead_letter_counts(prefix), code)
    end
    removed = removed + 1
  end
end
return removed
