"""The account-wide switches operators see and flip: halt, billing breaker, cooldown.

Every change of a switch is one atomic step (a script), so no reader ever meets half a switch.
Readers still take any record as it comes: a switch whose fields are missing or unreadable
(written by another version, or by hand) is on, since an unknown time.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import redis

from worker.store.jobs import history_event
from worker.store.keys import Keys
from worker.store.scripts import load_script

MANUAL_HALT_CODE = "MANUAL"


@dataclass(frozen=True)
class Halt:
    code: str
    reason: str
    since: float | None  # None: unknown


@dataclass(frozen=True)
class Breaker:
    since: float | None  # None: unknown
    code: str
    half_open: bool


def _time(raw: dict[str, str], name: str) -> float | None:
    """A Unix time field, None when absent or unreadable."""
    try:
        value = float(raw[name])
    except (KeyError, ValueError):
        return None
    return value if math.isfinite(value) else None


class Switches:
    """Halt and resume an account; read its halt, breaker and cooldown."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys
        self._resume = load_script(client, "resume")
        self._create = load_script(client, "incident_open")

    def halt(self, account: str, *, reason: str, code: str = MANUAL_HALT_CODE) -> bool:
        """Stop all sending of the account; False when it was already halted."""
        fields = ["since", repr(time.time()), "code", code, "reason", reason]
        return bool(self._create(keys=[self._keys.halt(account)], args=fields))

    def resume(self, account: str) -> int:
        """Lift the halt and release every held job; returns how many were released."""
        now = time.time()
        event = history_event(now, "released", action="resume")
        return int(self._resume(args=[self._keys.prefix, account, now, event]))

    def halted(self, account: str) -> Halt | None:
        raw: dict[str, str] = self._redis.hgetall(self._keys.halt(account))  # type: ignore[assignment]
        if not raw:
            return None
        return Halt(
            code=raw.get("code", ""), reason=raw.get("reason", ""), since=_time(raw, "since")
        )

    def breaker(self, account: str) -> Breaker | None:
        raw: dict[str, str] = self._redis.hgetall(self._keys.breaker(account))  # type: ignore[assignment]
        if not raw:
            return None
        return Breaker(
            since=_time(raw, "since"),
            code=raw.get("code", ""),
            half_open=raw.get("half_open") == "1",
        )

    def cooldown_until(self, account: str) -> float | None:
        value = self._redis.get(self._keys.cooldown(account))
        return int(value) / 1000 if value else None

    def clear_cooldown(self, account: str) -> bool:
        """End the account's RATE_001 cooldown now; False when there was none."""
        return bool(self._redis.delete(self._keys.cooldown(account)))

    def held_count(self, account: str) -> int:
        return int(self._redis.llen(self._keys.held(account)))
