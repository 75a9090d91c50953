-- One dispatch's begin (begin.lua, included above with keys.lua and ratelimit.lua) as a script.
return begin(ARGV)
