-- The dead-letter queue, written once for every script that parks a job. (keys.lua is included
-- above.)

-- Park `id`'s record (JSON text) at `now`: the record, its place in the index by time, and the
-- count of its code.
local function write_dead_letter(prefix, id, record, code, now)
  redis.call('SET', keys.dead_letter(prefix, id), record)
  redis.call('ZADD', keys.dead_letter_index(prefix), now, id)
  redis.call('HINCRBY', keys.dead_letter_counts(prefix), code, 1)
end
