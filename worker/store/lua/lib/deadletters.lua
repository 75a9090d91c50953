-- The dead-letter queue, written once for every script that parks a job. (keys.lua is included
-- above.)

-- Park `id`'s record (JSON text) at `now`: the record, its place in the index by time, and the
-- count of its code. `dk`: the keys by name (dead_letter, dead_letter_index, dead_letter_counts).
local function write_dead_letter(dk, id, record, code, now)
  redis.call('SET', dk.dead_letter, record)
  redis.call('ZADD', dk.dead_letter_index, now, id)
  redis.call('HINCRBY', dk.dead_letter_counts, code, 1)
end
