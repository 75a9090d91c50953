-- Remove dead letters for good (the job records keep their parked state until they expire).
-- ARGV: prefix, id...   Returns the number removed.
local prefix = ARGV[1]
local removed = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local raw = redis.call('GET', prefix .. 'dlq:record:' .. id)
  redis.call('ZREM', prefix .. 'dlq:index', id)
  if raw then
    local code = cjson.decode(raw).code
    redis.call('DEL', prefix .. 'dlq:record:' .. id)
    if redis.call('HINCRBY', prefix .. 'dlq:counts', code, -1) <= 0 then
      redis.call('HDEL', prefix .. 'dlq:counts', code)
    end
    removed = removed + 1
  end
end
return removed
