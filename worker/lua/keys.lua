-- Key names for the scripts, the twin of worker/keys.py (a test holds the two equal): included
-- at the top of every script that builds a key name. Variable parts are encoded as in Python:
-- '%', ':', '{' and '}' become %25, %3A, %7B and %7D, so parts never run into each other.
local function key_part(part)
  return (string.gsub(tostring(part), '[%%:{}]', function(c)
    return string.format('%%%02X', string.byte(c))
  end))
end

local keys = {}
function keys.job(prefix, id) return prefix .. 'job:' .. key_part(id) end
function keys.history(prefix, id) return prefix .. 'job:' .. key_part(id) .. ':history' end
function keys.due(prefix) return prefix .. 'due' end
function keys.leases(prefix) return prefix .. 'leases' end
function keys.enqueued_count(prefix) return prefix .. 'stats:enqueued' end
function keys.sent_in_second(prefix, second) return prefix .. 'stats:sent:' .. second end
function keys.held(prefix, account) return prefix .. 'held:' .. key_part(account) end
function keys.idempotency(prefix, account, key)
  return prefix .. 'idem:' .. key_part(account) .. ':' .. key_part(key)
end
function keys.ledger(prefix, account, key)
  return prefix .. 'sent:' .. key_part(account) .. ':' .. key_part(key)
end
function keys.claim(prefix, account, key)
  return prefix .. 'claim:' .. key_part(account) .. ':' .. key_part(key)
end
function keys.halt(prefix, account) return prefix .. 'halt:' .. key_part(account) end
function keys.breaker(prefix, account) return prefix .. 'breaker:' .. key_part(account) end
function keys.breaker_probe(prefix, account)
  return prefix .. 'breaker:' .. key_part(account) .. ':probe'
end
function keys.cooldown(prefix, account) return prefix .. 'cooldown:' .. key_part(account) end
function keys.window(prefix, account, span)
  return prefix .. 'rate:' .. key_part(account) .. ':' .. key_part(span)
end
function keys.limits(prefix, account) return prefix .. 'rate:' .. key_part(account) .. ':limits' end
function keys.rate_sequence(prefix, account)
  return prefix .. 'rate:' .. key_part(account) .. ':seq'
end
function keys.dead_letter(prefix, id) return prefix .. 'dlq:record:' .. key_part(id) end
function keys.dead_letter_index(prefix) return prefix .. 'dlq:index' end
function keys.dead_letter_counts(prefix) return prefix .. 'dlq:counts' end
function keys.incident(prefix, kind, account)
  return prefix .. 'incident:' .. key_part(kind) .. ':' .. key_part(account)
end
function keys.exhausted(prefix, account) return prefix .. 'exhausted:' .. key_part(account) end
