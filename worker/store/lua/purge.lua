-- Remove dead letters for good: record, index entry and count together.
-- A purged job is settled: its record, history and idempotency entry age out after the retention.
-- With forget = '1' (dead letters older than the DLQ's retention) they go at once, payload and all.
-- KEYS: dead_letter_index, dead_letter_counts, then 5 per dead letter: its record, then its job's
--   own keys (job, history, idempotency, ledger: named for the account and key below)
-- ARGV: retention_s, forget ('0'|'1'), parked_before (only dead letters parked at or before this
--   time go, '' for any), then 3 per dead letter: id, account, idempotency key (as the caller
--   read them from the record, '' where it named none)
-- Returns the number removed. A record that now names another account or key than the caller
-- read (rewritten in between) is left for a later purge, which reads it again; so is one parked
-- again after parked_before (an age-out must not take a job's fresh dead letter).
local index, counts = KEYS[1], KEYS[2]
local forget = ARGV[2] == '1'
local retention_ms = math.max(1, math.floor(tonumber(ARGV[1]) * 1000))
local parked_before = tonumber(ARGV[3])
local removed = 0
local k = 2  -- the keys of the dead letter before this one end at KEYS[k]
for i = 4, #ARGV, 3 do
  local id, account, key = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local record_key = KEYS[k + 1]
  local own = {job = KEYS[k + 2], history = KEYS[k + 3], idempotency = KEYS[k + 4],
    ledger = KEYS[k + 5]}
  k = k + 5
  local raw = redis.call('GET', record_key)
  local readable, record = pcall(cjson.decode, raw or '')
  if not readable or type(record) ~= 'table' then record = {} end
  local named = type(record.account) == 'string' and type(record.idempotency_key) == 'string'
  local as_read = (named and record.account == account and record.idempotency_key == key)
    or (not named and account == '' and key == '')
  if not raw then
    redis.call('ZREM', index, id)
  elseif as_read and not (parked_before
      and (tonumber(redis.call('ZSCORE', index, id)) or 0) > parked_before) then
    redis.call('ZREM', index, id)
    redis.call('DEL', record_key)
    if type(record.code) == 'string' and redis.call('HINCRBY', counts, record.code, -1) <= 0 then
      redis.call('HDEL', counts, record.code)
    end
    if named then
      if forget then
        redis.call('DEL', own.job, own.history)
        if redis.call('GET', own.idempotency) == id then redis.call('DEL', own.idempotency) end
      else
        retain(own, id, retention_ms)
      end
    end
    removed = removed + 1
  end
end
return removed
