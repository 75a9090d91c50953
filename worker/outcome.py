"""What a send attempt came to, as plain data: the input of the routing decision; and what the
delivery that made it did (``Result``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

OK = "OK"
TIMEOUT = "TIMEOUT"
CONNECTION = "CONNECTION"
EXPIRED = "EXPIRED"
# A worker died during its Gateway call; nobody knows whether the Gateway sent the message.
WORKER_LOST = "WORKER_LOST"
# The Gateway's "too many requests": its code, and the HTTP status it comes with.
RATE_LIMITED = "RATE_001"
TOO_MANY_REQUESTS = 429
TRANSPORT_CODES = frozenset({TIMEOUT, CONNECTION, WORKER_LOST})


def http_code(status: int) -> str:
    """The outcome code of an answer that carried no code of its own (``HTTP_502``)."""
    return f"HTTP_{status}"


@dataclass(frozen=True)
class RateLimitHeaders:
    """The ``X-RateLimit-*`` headers of one answer; None where a header was absent or garbled.

    ``ignored`` names the values the answer carried but that were refused as out of range
    (``sec_limit``, ``min_remaining``, ``retry_after``…): counted, never stored or clamped.
    """

    sec_limit: int | None = None
    sec_remaining: int | None = None
    min_limit: int | None = None
    min_remaining: int | None = None
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """The routing-relevant facts of one attempt: code, group, HTTP status, hints."""

    code: str
    group: str | None = None
    status: int | None = None
    retry_after_s: float | None = None
    ambiguous: bool = False

    @classmethod
    def ok(cls, status: int = 200) -> Outcome:
        """A success."""
        return cls(code=OK, status=status)

    @classmethod
    def expired(cls) -> Outcome:
        """A job found past its ``expires_at`` before it was sent."""
        return cls(code=EXPIRED)

    @property
    def is_rate_limited(self) -> bool:
        """True when the Gateway said the key sent too many (RATE_001, or a bare 429)."""
        return self.code == RATE_LIMITED or self.status == TOO_MANY_REQUESTS

    @property
    def is_transport(self) -> bool:
        """True when no HTTP answer came back."""
        return self.status is None and self.code in TRANSPORT_CODES


@dataclass(frozen=True)
class Sent:
    """A message the Gateway accepted."""

    wamid: str
    status: int = 200
    rate_limit: RateLimitHeaders = field(default_factory=RateLimitHeaders)

    @property
    def outcome(self) -> Outcome:
        """The routing-relevant view of this success."""
        return Outcome.ok(self.status)


class Result(StrEnum):
    """What one delivery did; also the ``outcome`` label of ``msgworker_jobs_total`` and the
    value a Celery task returns."""

    SENT = "sent"
    RESCHEDULED = "rescheduled"
    RETRIED = "retried"
    PARKED = "parked"
    # The job is held behind its account's halt (JobState.HELD), whether this delivery's answer
    # halted the account or found it halted. The label says "halted": dashboards and alert
    # rules already read it, so the value stays.
    HELD = "halted"
    # The job is held behind a template WhatsApp paused or disabled (``template_paused``).
    TEMPLATE_HELD = "template_held"
    DUPLICATE = "duplicate"
    WAITING = "waiting"
    DROPPED = "dropped"


# The results msgworker_jobs_total counts: what became of a job. A delivery that waits (for its
# slot, a probe, replicas) or drops a dispatch another execution has leaves the job as it was.
COUNTED_RESULTS = frozenset(Result) - {Result.WAITING, Result.DROPPED}
