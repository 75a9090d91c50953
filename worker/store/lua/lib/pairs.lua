-- Pair pacing: per account and recipient, at most `burst` calls the Gateway accepted within any
-- `interval_ms`, measured between its answers (WhatsApp fails a faster pair with 131056).
-- Included by begin (which reserves), the settlements (which confirm or give back), recheck
-- (which gives back) and the receipts (delivery.lua: a 131056 slows the pair).
-- An account's pairs are one hash (keys.pairs): a field per recipient (its digits), whose value
-- lists the pair's entries, separated by spaces:
--   '<ms>'         a call the Gateway accepted, answered at <ms>: it counts for interval_ms
--   '<ms>=<id>'    job <id>'s call, begun for the slot at <ms>, not answered yet: it counts
--                  until answered (confirmed or given back), or for a claim's lease at most
--                  (a worker that died in its call)
-- Calls begun count, or two jobs to one recipient begun together would both go out and the
-- second fail. Job ids are hex (the producer's uuid4): no space, no '=' in them.
-- Idle pairs are forgotten: each reservation rewrites its pair with its live entries only; the
-- hash's upkeep, at most once a second (like the rate windows'), renews its expiry so that it
-- outlives every call that can still count (a quiet account's hash goes), and every
-- PAIRS_SWEEP_MS or interval, whichever is longer, forgets the pairs with no live entry (a look at
-- each pair written since the last sweep: constant work a send, amortised).

-- The hash's fields for its upkeep (never a recipient: those are digits): when it was last kept
-- (its expiry renewed) and when it was last swept (ms).
local PAIRS_KEPT, PAIRS_SWEPT = 'kept', 'swept'
local PAIRS_KEEP_EVERY_MS = 1000
local PAIRS_SWEEP_MS = 10000

-- A job's recipient: its field `to`, or for a job enqueued before that field was written, its
-- message's (nil when neither has one: such a job is not paced).
local function pair_recipient(to, message)
  if to and to ~= '' then return to end
  if not message or message == '' then return nil end
  local ok, decoded = pcall(cjson.decode, message)
  local recipient = ok and type(decoded) == 'table' and decoded.to
  if type(recipient) == 'string' and recipient ~= '' then return recipient end
  return nil
end

-- The live entries of one pair's value other than job `id`'s reservation, and when each stops
-- counting at the earliest (ms): an accepted one interval_ms after its answer; one not answered
-- yet interval_ms after its answer, which comes after both its slot and now.
local function pair_live(value, now_ms, interval_ms, lease_ms, id)
  local live, frees = {}, {}
  for entry in string.gmatch(value or '', '[^ ]+') do
    local at, holder = string.match(entry, '^(%d+)=?(.*)$')
    at = tonumber(at)
    if at then
      if holder == '' then
        if at + interval_ms > now_ms then
          live[#live + 1] = entry
          frees[#frees + 1] = at + interval_ms
        end
      elseif holder ~= id and at + lease_ms > now_ms then
        live[#live + 1] = entry
        frees[#frees + 1] = math.max(at, now_ms) + interval_ms
      end
    end
  end
  return live, frees
end

-- A look at job `id`'s pair before its call: {wait_ms, live, kept, swept}. wait_ms is 0 when
-- the pair is free (fewer than burst live entries), else how long until enough of them stop
-- counting.
local function pair_look(pairs_key, to, id, now_ms, interval_ms, lease_ms, burst)
  local got = redis.call('HMGET', pairs_key, to, PAIRS_KEPT, PAIRS_SWEPT)
  local live, frees = pair_live(got[1], now_ms, interval_ms, lease_ms, id)
  local wait_ms = 0
  if #frees >= burst then
    table.sort(frees)
    wait_ms = math.max(1, frees[#frees - burst + 1] - now_ms)
  end
  return {wait_ms = wait_ms, live = live, kept = tonumber(got[2]) or 0,
    swept = tonumber(got[3]) or 0}
end

-- Forget the pairs with no live entry.
local function pairs_sweep(pairs_key, now_ms, interval_ms, lease_ms)
  local all = redis.call('HGETALL', pairs_key)
  local idle = {}
  for i = 1, #all, 2 do
    local pair = all[i]
    if pair ~= PAIRS_KEPT and pair ~= PAIRS_SWEPT
        and #pair_live(all[i + 1], now_ms, interval_ms, lease_ms, '') == 0 then
      idle[#idle + 1] = pair
    end
  end
  for first = 1, #idle, 1000 do
    redis.call('HDEL', pairs_key, unpack(idle, first, math.min(first + 999, #idle)))
  end
end

-- Reserve the pair (looked at with pair_look, found free) for job `id`'s call at slot_ms.
-- ttl_ms: how long the hash must outlive this call (its lease, its wait and an interval).
local function pair_reserve(pairs_key, to, id, look, slot_ms, now_ms, interval_ms, lease_ms,
    ttl_ms)
  local live = look.live
  live[#live + 1] = string.format('%d', slot_ms) .. '=' .. id
  local value = table.concat(live, ' ')
  if now_ms < look.kept + PAIRS_KEEP_EVERY_MS then
    redis.call('HSET', pairs_key, to, value)
    return
  end
  local sweep = now_ms >= look.swept + math.max(PAIRS_SWEEP_MS, interval_ms)
  if sweep then pairs_sweep(pairs_key, now_ms, interval_ms, lease_ms) end
  local now_text = string.format('%d', now_ms)
  if sweep then
    redis.call('HSET', pairs_key, to, value, PAIRS_KEPT, now_text, PAIRS_SWEPT, now_text)
  else
    redis.call('HSET', pairs_key, to, value, PAIRS_KEPT, now_text)
  end
  -- Outlives every call reserved before the next upkeep, a second from now at the earliest.
  redis.call('PEXPIRE', pairs_key, ttl_ms + PAIRS_KEEP_EVERY_MS)
end

-- The pair's value with `entry` in place of job `id`'s reservation (nil: removed); nothing
-- changes when the job holds none (given back already, or forgotten after its lease: a call
-- answered that late is let go uncounted, rather than the hash written with no expiry to keep).
local function pair_replace(pairs_key, to, id, entry)
  local value = redis.call('HGET', pairs_key, to)
  if not value then return end
  local kept, found = {}, false
  for part in string.gmatch(value, '[^ ]+') do
    if string.match(part, '=(.*)$') == id then found = true else kept[#kept + 1] = part end
  end
  if not found then return end
  if entry then kept[#kept + 1] = entry end
  if #kept > 0 then
    redis.call('HSET', pairs_key, to, table.concat(kept, ' '))
  else
    redis.call('HDEL', pairs_key, to)
  end
end

-- A job's field `pair`: the recipient whose pair its call reserved; with a burst of 1, then '@'
-- and the moment (ms) until which that reservation stays its pair's only entry for sure (its
-- slot plus a lease: no other call is reserved while it counts, and the hash outlives it).
local function pair_field(to, alone_until_ms)
  if not alone_until_ms then return to end
  return to .. '@' .. string.format('%d', alone_until_ms)
end

-- The recipient and the moment its reservation stays alone until (nil: not alone) of a job's
-- field `pair`.
local function pair_of(field)
  local to, alone_until = string.match(field, '^([^@]*)@?(%d*)$')
  return to, tonumber(alone_until)
end

-- Job `id`'s reservation of the pair ends: with accepted_ms, as a call the Gateway accepted
-- then (a confirmation); without, as one that does not count (given back). A reservation still
-- alone is confirmed by writing the pair whole, unread (a send's usual case): alone by the
-- job's field, and `claimed`, the call's claim still standing when settled, which a settlement
-- sent again late (a client's retry) or one whose claim ran out cannot say. An entry a receipt
-- added meanwhile (pair_accepted) is older than this answer, which then counts for it too.
local function pair_settle(pairs_key, field, id, accepted_ms, claimed)
  local to, alone_until = pair_of(field)
  local accepted = accepted_ms and string.format('%d', accepted_ms)
  if accepted and claimed and alone_until and accepted_ms < alone_until then
    redis.call('HSET', pairs_key, to, accepted)
  else
    pair_replace(pairs_key, to, id, accepted)
  end
end

-- Slow a pair: it counts as having had a call accepted at at_ms (a 131056 receipt: WhatsApp
-- found the pair too fast whatever was reckoned here). ttl_ms: how long the hash must outlive
-- that (an interval at least; never shortened).
local function pair_accepted(pairs_key, to, at_ms, ttl_ms)
  local value = redis.call('HGET', pairs_key, to)
  local accepted = string.format('%d', at_ms)
  redis.call('HSET', pairs_key, to, value and (value .. ' ' .. accepted) or accepted)
  if redis.call('PTTL', pairs_key) < ttl_ms then redis.call('PEXPIRE', pairs_key, ttl_ms) end
end

-- The job's reservation given back, if it holds one (its field `pair`, see pair_field).
local function pair_give_back(job, pairs_key, id)
  local field = redis.call('HGET', job, 'pair')
  if field then pair_settle(pairs_key, field, id) end
end
