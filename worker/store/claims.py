"""Claiming a dispatched job: who runs it (``Execution``), what ``begin.lua`` found (``Claim``)
and the arguments it takes for one dispatch (``Opening``).

After a send, the group's next dispatch is begun in the same round trip as that send's
settlement (``sent.lua`` runs the begin for it); after any other outcome it is begun on
its own. Every rate-limit slot is reserved right before the call that uses it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from worker.store.ratelimit import SEC_MARGIN_START_MS, RateLimit
from worker.store.records import Job


class Verdict(StrEnum):
    """What ``begin`` found; see ``worker/store/lua/begin.lua``."""

    STALE = "stale"
    BUSY = "busy"
    DUPLICATE = "duplicate"
    LOST = "lost"
    EXPIRED = "expired"
    HELD = "held"
    DEFERRED = "deferred"
    BREAKER = "breaker"
    WAIT = "wait"
    GO = "go"


# A deferred claim's detail when the job waits for its recipient's pair, not for a rate-limit
# slot (begin.lua).
PAIR_WAIT = "pair"


@dataclass(frozen=True)
class Address:
    """What names a job's keys: its account, idempotency key and priority (none of which ever
    changes), read from its record before its begin. A job with no record has ``NOWHERE``."""

    account: str
    key: str
    priority: str


# The address of a job with no record: its keys name nothing it has; begin finds it gone.
NOWHERE = Address("", "", "")


@dataclass(frozen=True)
class Execution:
    """One attempt to run a dispatched job: who holds it (``holder``), for which ``gen``, and the
    job's address (None: read it first)."""

    job_id: str
    gen: int
    holder: str
    address: Address | None = None


@dataclass(frozen=True)
class Claim:
    """What ``begin`` found at ``begun_at``: the verdict, its detail, the wait from then until the
    call's slot, and the job."""

    verdict: Verdict
    detail: str
    wait_s: float
    job: Job | None
    begun_at: float

    @property
    def slot_at(self) -> float:
        """When the call's slot comes (s): the whole millisecond begin reckoned from, plus the
        wait (a GO's; begin reckons in whole milliseconds)."""
        return math.floor(self.begun_at * 1000) / 1000 + self.wait_s

    @property
    def pair_wait(self) -> bool:
        """Whether the job went back on the schedule to wait for its recipient's pair."""
        return self.verdict is Verdict.DEFERRED and self.detail == PAIR_WAIT


@dataclass(frozen=True)
class Opening:
    """Everything ``begin`` needs for one dispatch but the time: its execution, how long the
    claim lasts, how often the billing breaker probes, the account limits and the margin the
    limiter's second has over the Gateway's (``worker.send.arrivals``)."""

    execution: Execution
    lease_s: float
    probe_interval_s: float
    rate: RateLimit
    sec_margin_ms: int = SEC_MARGIN_START_MS
