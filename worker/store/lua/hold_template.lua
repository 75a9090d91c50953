-- Hold a template for an account (WhatsApp paused or disabled it, or an operator held it): from
-- now on each of the account's jobs using it is held at its begin instead of calling the
-- Gateway (hold_template in lib/templates.lua).
-- KEYS: the account's template holds (hash)
-- ARGV: template ('<name>|<language>', parts encoded), hold_json ({since, reason, code, by})
-- Returns 1 when this call held the template, 0 when it was held already.
return hold_template(KEYS[1], ARGV[1], cjson.decode(ARGV[2]))
