-- One dispatch's begin (lib/begin.lua, included above) as a script: its keys are KEYS.
return begin(begin_keys(1), ARGV, new_looks())
