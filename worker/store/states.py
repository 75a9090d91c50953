"""A job's states, named once for Python, the Lua scripts (``protocol.lua_constants``) and the
HTTP schemas, with the sets the rules go by."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """Where a job stands: waiting to be sent (queued, scheduled), being sent, sent, held behind
    its account's halt, or parked as a dead letter."""

    QUEUED = "queued"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    HELD = "held"
    PARKED = "parked"


# Finished: the worker will not send the job again by itself. Sent, or parked until an operator
# replays it; a held job is not finished: it goes when its account's halt lifts.
FINISHED = frozenset({JobState.SENT, JobState.PARKED})
# Settled: a settlement ended the job's attempt, and no execution may settle it again. Finished,
# or held behind a halt (a retry is not: it schedules a new attempt, under a new generation).
# What ``lib/settle.lua`` checks before it records a settlement.
SETTLED = FINISHED | {JobState.HELD}
