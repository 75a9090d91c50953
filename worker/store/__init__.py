"""Everything that touches Redis state: key names, job records, the schedule, dead letters,
switches and the rate limiter; the Lua scripts live in ``lua/`` beside them.
"""
