-- Template holds: WhatsApp paused or disabled a template (a `failed` 132015 or 132016, or Meta's
-- review event), so the account's jobs using it wait, held, until it is released. (Uses
-- keys.lua.) A template is named as the job's `template` field names it (keys.template_field
-- in Python): '<name>|<language>', each part encoded; '' for a message that is no template.
-- Its held jobs are `<template>:<id>` in the account's template_held_jobs set, all at score 0,
-- so one template's jobs are one lexical range.

-- The template of a job: its `template` field, or, for a job enqueued before that field
-- existed (nil), read from its message (only ever done while the account holds a template).
local function job_template(field, message)
  if field then return field end
  local ok, m = pcall(cjson.decode, message or '')
  if not ok or type(m) ~= 'table' or m.type ~= 'template' or type(m.template) ~= 'table' then
    return ''
  end
  local name, language = m.template.name, m.template.language
  if type(name) ~= 'string' or type(language) ~= 'table' or type(language.code) ~= 'string' then
    return ''
  end
  return key_part(name) .. '|' .. key_part(language.code)
end

-- Hold a job behind its template's hold: a new generation (no dispatch of the one before acts
-- again), the state held with reason template_paused, the job in the account's set of jobs held
-- by template (release_template.lua puts it back on the schedule).
local function hold_for_template(job, held_jobs, template, id, now)
  redis.call('HINCRBY', job, 'gen', 1)
  redis.call('HSET', job, 'state', JOB_STATE.HELD, 'held_reason', 'template_paused', 'updated_at', now)
  redis.call('ZADD', held_jobs, 0, template .. ':' .. id)
end

-- Hold `template` for the account whose holds hash is `holds`: `hold` is its record ({since,
-- reason, code, by}); a template held already keeps the time of its first hold, the rest is
-- the latest hold's (a 132016 after a 132015 makes it disabled). Returns 1 when this held the
-- template, 0 when it was held already.
local function hold_template(holds, template, hold)
  local before = redis.call('HGET', holds, template)
  if before then
    local ok, first = pcall(cjson.decode, before)
    if ok and type(first) == 'table' and first.since then hold.since = first.since end
  end
  redis.call('HSET', holds, template, cjson.encode(hold))
  return before and 0 or 1
end
