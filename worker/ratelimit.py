"""The cluster-wide rate limiter's settings; its logic is Lua (``worker/lua/ratelimit.lua``).

Every call of every worker reserves a slot in the account's two sliding windows as part of
claiming its job (``begin.lua``): slots are handed out in time order where both windows and any
RATE_001 cooldown allow them, so the account's limit is used fully, workers queue fairly, and
nobody polls Redis while waiting. Each answer's ``X-RateLimit-*`` headers are learnt from as
the job is settled (``finish.lua``): an announced limit is adopted, and a window the Gateway
says is fuller than ours is filled to match.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.outcome import RateLimitHeaders

# The Gateway counts arrivals, which trail our reservations by a little jitter: windows a touch
# longer than the Gateway's keep bunched arrivals under its limit.
SEC_WINDOW_MS = 1020
MIN_WINDOW_MS = 60_300


@dataclass(frozen=True)
class RateLimit:
    """The configured limits (the Gateway's announced ones win) and the longest in-worker wait."""

    per_sec: int
    per_min: int
    max_wait_s: float = 1.0

    def reserve_arguments(self) -> list[int]:
        """begin.lua's rate-limit arguments."""
        return [
            self.per_sec,
            self.per_min,
            SEC_WINDOW_MS,
            MIN_WINDOW_MS,
            int(self.max_wait_s * 1000),
        ]


def learn_arguments(headers: RateLimitHeaders) -> list[int | str]:
    """finish.lua's arguments to learn from one answer's headers ('' where absent)."""
    values = (headers.sec_limit, headers.sec_remaining, headers.min_limit, headers.min_remaining)
    return [SEC_WINDOW_MS, MIN_WINDOW_MS, *("" if v is None else v for v in values)]
