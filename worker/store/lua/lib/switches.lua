-- What the account's switches do to a job, written once for every script that meets them.
-- (keys.lua is included above.)

-- Hold a job behind its account's halt: a new generation (no dispatch of the one before acts
-- again), the state held, the job on the account's hold list (resume.lua puts it back on the
-- schedule). `...`: more fields of the job to set with the state.
local function hold_job(job, held, id, now, ...)
  redis.call('HINCRBY', job, 'gen', 1)
  redis.call('HSET', job, 'state', JOB_STATE.HELD, 'updated_at', now, ...)
  redis.call('RPUSH', held, id)
end

-- An open billing breaker lets one call through at a time, its probe. Returns 'probe' when
-- `execution` took the probe now, else 'wait' when the breaker is half-open (the probe's answer
-- decides soon), or 'breaker' when it is open.
local function take_probe(breaker, probe, execution, probe_ms)
  if redis.call('SET', probe, execution, 'NX', 'PX', probe_ms) then return 'probe' end
  if redis.call('HGET', breaker, 'half_open') == '1' then return 'wait' end
  return 'breaker'
end

-- A probe `execution` will not make: the next call may probe at once.
local function drop_probe(probe, execution)
  if redis.call('GET', probe) == execution then redis.call('DEL', probe) end
end
