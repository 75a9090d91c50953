"""The cluster-wide rate limiter: both sliding windows of an account, one atomic call.

Every call of every worker reserves a slot in the account's two windows (``acquire.lua``):
slots are handed out in time order where both windows allow them, so the account's limit is
used fully, workers queue fairly, and nobody polls Redis while waiting. The limiter learns from
the Gateway's ``X-RateLimit-*`` headers (``observe.lua``) and honours RATE_001 cooldowns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from worker.errors import ClaimLost
from worker.jobs import Execution
from worker.keys import Keys
from worker.outcome import RateLimitHeaders
from worker.scripts import load_script

# The Gateway counts arrivals, which trail our reservations by a little jitter: windows a touch
# longer than the Gateway's keep bunched arrivals under its limit.
SEC_WINDOW_MS = 1020
MIN_WINDOW_MS = 60_300


@dataclass(frozen=True)
class Limits:
    per_sec: int
    per_min: int


@dataclass(frozen=True)
class Grant:
    """A reserved slot (call after ``wait_s``), or, when not ``reserved``, how long to defer."""

    reserved: bool
    wait_s: float


class RateLimiter:
    """Reserves Gateway call slots within the account's windows and cooldown, for all workers."""

    def __init__(self, client: redis.Redis, keys: Keys, limits: Limits) -> None:
        self._keys = keys
        self._limits = limits
        self._acquire = load_script(client, "acquire")
        self._observe = load_script(client, "observe")

    def acquire(
        self,
        account: str,
        execution: Execution,
        *,
        lease_s: float,
        max_wait_s: float,
        now_s: float | None = None,
    ) -> Grant:
        """Reserve a slot no more than ``max_wait_s`` away; else say how long the wait is."""
        now_ms = int((time.time() if now_s is None else now_s) * 1000)
        status, wait_ms = self._acquire(
            args=[
                self._keys.prefix,
                account,
                now_ms,
                self._limits.per_sec,
                self._limits.per_min,
                execution.job_id,
                execution.gen,
                execution.holder,
                int(lease_s * 1000),
                int(max_wait_s * 1000),
                SEC_WINDOW_MS,
                MIN_WINDOW_MS,
            ]
        )
        if int(status) < 0:
            raise ClaimLost(execution.job_id)
        return Grant(reserved=int(status) == 1, wait_s=int(wait_ms) / 1000)

    def observe(
        self, account: str, headers: RateLimitHeaders, *, now_s: float | None = None
    ) -> int:
        """Learn from one answer's headers; returns how many calls the log was short of."""
        values = (
            headers.sec_limit,
            headers.sec_remaining,
            headers.min_limit,
            headers.min_remaining,
        )
        if all(value is None for value in values):
            return 0
        now_ms = int((time.time() if now_s is None else now_s) * 1000)
        argv = [self._keys.prefix, account, now_ms, SEC_WINDOW_MS, MIN_WINDOW_MS]
        argv += ["" if value is None else value for value in values]
        return int(self._observe(args=argv))
