"""The cluster-wide rate limiter: both sliding windows of an account, one atomic call."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from worker.errors import ClaimLost
from worker.jobs import Execution
from worker.keys import Keys
from worker.scripts import load_script


@dataclass(frozen=True)
class Limits:
    per_sec: int
    per_min: int


class RateLimiter:
    """Grants Gateway calls within the account's windows and cooldown, shared by all workers."""

    def __init__(self, client: redis.Redis, keys: Keys, limits: Limits) -> None:
        self._keys = keys
        self._limits = limits
        self._acquire = load_script(client, "acquire")

    def try_acquire(
        self, account: str, execution: Execution, *, lease_s: float, now_s: float | None = None
    ) -> float:
        """0 when the call may go now (it is counted); else the seconds to wait first."""
        now_ms = int((time.time() if now_s is None else now_s) * 1000)
        wait_ms = int(
            self._acquire(
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
                ]
            )
        )
        if wait_ms < 0:
            raise ClaimLost(execution.job_id)
        return wait_ms / 1000
