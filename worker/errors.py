"""Every error msgworker raises, in one tree under one root.

    WorkerError
    ├── ConfigError                 bad settings or routing table; start-up stops
    ├── InvalidMessage              a payload or envelope refused at enqueue (names each field)
    ├── Unavailable                 Redis could not be reached, or did not answer, in time
    │   └── ReplicasMissing         fewer replicas than REDIS_MIN_REPLICAS took a write in time
    │       └── WriteLost           the write is not on the primary: a failover came first
    ├── StoreFull                   Redis is full (maxmemory reached) and refused a write
    └── GatewayError                the Gateway did not accept a message (code, group, status…)
        ├── GatewayRejected         the Gateway answered, with anything but a success
        └── GatewayUnreachable      no answer: the transport failed
            ├── GatewayNotReached       the request was never (completely) written: not sent
            └── GatewayAnswerLost       the request was written, the answer never came:
                                        the message may have been sent (ambiguous)

The class says what happened on the wire; what to do about it is the routing table's
business (`worker.send.routing`), driven by the fields, never by the class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker.outcome import Outcome, RateLimitHeaders


class WorkerError(Exception):
    """Root of every error msgworker raises on purpose."""


class ConfigError(WorkerError):
    """Raised when settings or the routing table are invalid; the message is one line."""


@dataclass(frozen=True)
class FieldProblem:
    """One refused field: a dotted path (``text.body``) and what is wrong with it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidMessage(WorkerError, ValueError):
    """Raised when a message or its envelope is refused; nothing was enqueued."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class Unavailable(WorkerError):
    """Raised when Redis cannot be reached or does not answer within the producer's timeout;
    ``url`` (masked) says which Redis, ``problem`` what was wrong when that is known (a TLS
    certificate the client does not trust, say)."""

    def __init__(
        self, *, timeout_s: float, url: str | None = None, problem: str | None = None
    ) -> None:
        self.timeout_s = timeout_s
        self.url = url
        self.problem = problem
        where = f"Redis at {url}" if url else "Redis"
        text = f"{where} could not be reached or did not answer within {timeout_s:g} s"
        super().__init__(f"{text}: {problem}" if problem else text)


class ReplicasMissing(Unavailable):
    """Raised when fewer than REDIS_MIN_REPLICAS replicas acknowledged a write in time (right
    after a failover, say): the write is on the primary, but a failover now could lose it."""

    def __init__(self, *, wanted: int, acknowledged: int, timeout_s: float) -> None:
        self.wanted = wanted
        self.acknowledged = acknowledged
        self.timeout_s = timeout_s
        self.url = None  # the primary answered: which Redis is not the question
        self.problem = f"{acknowledged} of {wanted} replicas"
        WorkerError.__init__(
            self,
            f"{acknowledged} of the {wanted} Redis replicas required acknowledged the write "
            f"within {timeout_s:g} s",
        )


class WriteLost(ReplicasMissing):
    """Raised when the primary a barrier waited on does not have the write it vouches for: the
    write went to a primary that lost its role (a failover, a partition) before any replica had
    it, or, for a claim, the claim ran out first. Whatever rested on the write did not happen;
    doing it again is safe."""

    def __init__(self, *, wanted: int, acknowledged: int, timeout_s: float) -> None:
        super().__init__(wanted=wanted, acknowledged=acknowledged, timeout_s=timeout_s)
        self.problem = "the write was lost in a failover"
        WorkerError.__init__(
            self,
            "the write is not on the Redis primary (lost in a failover before a replica had "
            "it): doing it again is safe",
        )


class StoreFull(WorkerError):
    """Raised when Redis refuses a write because it reached its maxmemory; nothing was written."""


class GatewayError(WorkerError):
    """Raised when the Gateway did not accept a message."""

    def __init__(
        self,
        *,
        code: str,
        group: str | None = None,
        status: int | None = None,
        description: str = "",
        params: dict[str, Any] | None = None,
        retry_after_s: float | None = None,
        rate_limit: RateLimitHeaders | None = None,
        ambiguous: bool = False,
    ) -> None:
        self.code = code
        self.group = group
        self.status = status
        self.description = description
        self.params = params or {}
        self.retry_after_s = retry_after_s
        self.rate_limit = rate_limit or RateLimitHeaders()
        self.ambiguous = ambiguous
        where = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"{code} ({where}): {description}" if description else f"{code} ({where})")

    @property
    def outcome(self) -> Outcome:
        """The routing-relevant view of this failure."""
        return Outcome(
            code=self.code,
            group=self.group,
            status=self.status,
            retry_after_s=self.retry_after_s,
            ambiguous=self.ambiguous,
        )


class GatewayRejected(GatewayError):
    """Raised when the Gateway (or a proxy before it) answered with anything but a success."""


class GatewayUnreachable(GatewayError):
    """Raised when no answer came back."""


class GatewayNotReached(GatewayUnreachable):
    """Raised when the request was never completely written: the message was not sent."""


class GatewayAnswerLost(GatewayUnreachable):
    """Raised when the request was written but no answer came: it may have been sent."""

    def __init__(self, *, code: str, description: str = "") -> None:
        super().__init__(code=code, description=description, ambiguous=True)
