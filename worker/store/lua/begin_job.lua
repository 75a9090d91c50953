-- One dispatch's begin (lib/begin.lua, included above) as a script: its keys are KEYS.
return begin(named_keys(SCRIPT_KEYS, 1), ARGV, new_looks())
