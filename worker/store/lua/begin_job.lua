-- One dispatch's begin (lib/begin.lua, included above) as a script.
return begin(ARGV, new_looks())
