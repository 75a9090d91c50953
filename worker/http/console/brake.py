"""The login brake: an address that keeps guessing the password is slowed, never locked out.

After ``FAILURES_MAX`` failed logins within ``WINDOW_S`` from one client address, that address
gets one attempt per ``SLOT_S``; the others are refused (429) with the seconds to wait. Whoever
comes with the right password waits at most one slot, however long the guessing went on: a
lock-out would let anyone who shares an address with the operator (or can make their browser
post the form) keep them out. The brake never looks at the password, so a braked answer tells
nothing about a guess. Several serve processes share it through Redis.
"""

from __future__ import annotations

import math
import secrets
import time

import redis

from worker.store.keys import Keys

# Failed logins from one address within the window before it is slowed.
FAILURES_MAX = 10
WINDOW_S = 300
# A slowed address's pace: one attempt per slot.
SLOT_S = 3.0
SLOT_MS = math.ceil(SLOT_S * 1000)


class LoginBrake:
    """Failed logins per client address (only the latest ``FAILURES_MAX`` are kept, enough to
    tell whether as many fell within the window) and the slot a slowed address waits for."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    def wait_s(self, address: str) -> float | None:
        """None if this attempt may go ahead (taking a slowed address's slot), else the seconds
        until the address's next slot."""
        failed = self._keys.console_login_failed(address)
        if self._redis.zcount(failed, time.time() - WINDOW_S, "+inf") < FAILURES_MAX:
            return None
        slot = self._keys.console_login_slot(address)
        if self._redis.set(slot, "1", nx=True, px=SLOT_MS):
            return None
        left_ms = int(self._redis.pttl(slot))
        return max(left_ms, 1) / 1000  # -2: the slot ended just now; try again at once

    def failed(self, address: str) -> None:
        """Counts a wrong password; a slowed address's next slot starts from now."""
        key = self._keys.console_login_failed(address)
        now = time.time()
        pipe = self._redis.pipeline(transaction=True)
        pipe.zadd(key, {f"{now!r}:{secrets.token_hex(4)}": now})
        pipe.zremrangebyrank(key, 0, -FAILURES_MAX - 1)
        pipe.expire(key, WINDOW_S)
        pipe.zcount(key, now - WINDOW_S, "+inf")
        *_, failures = pipe.execute()
        if failures >= FAILURES_MAX:
            self._redis.set(self._keys.console_login_slot(address), "1", px=SLOT_MS)
