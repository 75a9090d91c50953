"""Which successes' remaining counts are held against the account's call log.

An answer's ``X-RateLimit-*-Remaining`` says how many calls the Gateway has left for the key in
each window. When that is fewer than the log shows, another client uses the key, and the
settlement fills the log to match (``learn`` in ratelimit.lua), at the cost of two counts of
the log: two of the two dozen commands a send's settlement runs. The log holds every call of
this deployment, so a comparison can only find the other client's calls; once per account every
``RECONCILE_INTERVAL_S`` in each worker process finds them about as soon as every answer would
(a fill matches the log to the Gateway's count, it does not add to it). At 1,000 sends a second
one success in fifty is compared; at 80 a second, one in four. An answer that refused the call
is always compared (the delivery does not ask here): it is rare, and a 429 is the answer that
says the other client has used up a window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

from worker.outcome import RateLimitHeaders

RECONCILE_INTERVAL_S = 0.05


class Reconciliation:
    """Per account, the time of its last comparison in this process.

    Threads share it without a lock: two answers passed on in the same instant cost one extra
    comparison.
    """

    def __init__(
        self,
        interval_s: float = RECONCILE_INTERVAL_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._compared_at: dict[str, float] = {}

    def for_settlement(self, account: str, headers: RateLimitHeaders) -> RateLimitHeaders:
        """``headers`` as the settlement should learn from them: with their remaining counts
        when the account's log is due a comparison, else without (the limits are learned
        either way)."""
        if headers.sec_remaining is None and headers.min_remaining is None:
            return headers
        now = self._clock()
        if now - self._compared_at.get(account, -math.inf) >= self._interval_s:
            self._compared_at[account] = now
            return headers
        return replace(headers, sec_remaining=None, min_remaining=None)
