-- Remove dead letters for good: record, index entry and count together.
-- A purged job is settled: its record, history and idempotency entry age out after the retention.
-- With forget = '1' (dead letters older than the DLQ's retention) they go at once, payload and all.
-- ARGV: prefix, retention_s, forget ('0'|'1'), id...   Returns the number removed.
local prefix, forget = ARGV[1], ARGV[3] == '1'
local retention_ms = math.max(1, math.floor(tonumber(ARGV[2]) * 1000))
local counts = keys.dead_letter_counts(prefix)
local removed = 0
for i = 4, #ARGV do
  local id = ARGV[i]
  local record_key = keys.dead_letter(prefix, id)
  local raw = redis.call('GET', record_key)
  redis.call('ZREM', keys.dead_letter_index(prefix), id)
  if raw then
    local record = cjson.decode(raw)
    redis.call('DEL', record_key)
    if redis.call('HINCRBY', counts, record.code, -1) <= 0 then redis.call('HDEL', counts, record.code) end
    local account, key = record.account, record.idempotency_key
    if type(account) == 'string' and type(key) == 'string' then
      if forget then
        redis.call('DEL', keys.job(prefix, id), keys.history(prefix, id))
        local idem = keys.idempotency(prefix, account, key)
        if redis.call('GET', idem) == id then redis.call('DEL', idem) end
      else
        retain(prefix, id, account, key, retention_ms)
      end
    end
    removed = removed + 1
  end
end
return removed
