-- Answers by code, counted where they are settled (sent.lua, retry.lua, park.lua, hold.lua, and
-- a delivery's `failed` that parks its job): a hash per second, kept two minutes, that
-- `msgworker status` reads its send rate from (`OK`) and the console folds into its chart.
-- (keys.lua is included above.)

-- One answer with `code` in the hash of its second (keys.answers_in_second): one HINCRBY; the
-- EXPIRE only for the second's first answer of that code (the hash's first field is one of
-- those).
local function count_answer(second, code)
  if redis.call('HINCRBY', second, code, 1) == 1 then redis.call('EXPIRE', second, 120) end
end
