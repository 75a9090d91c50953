"""The account-wide switches operators see and flip: halt, billing breaker, cooldown."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from worker.jobs import history_event
from worker.keys import Keys
from worker.scripts import load_script

MANUAL_HALT_CODE = "MANUAL"


@dataclass(frozen=True)
class Halt:
    code: str
    reason: str
    since: float


@dataclass(frozen=True)
class Breaker:
    since: float
    code: str
    half_open: bool


class Switches:
    """Halt and resume an account; read its halt, breaker and cooldown."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys
        self._resume = load_script(client, "resume")

    def halt(self, account: str, *, reason: str, code: str = MANUAL_HALT_CODE) -> bool:
        """Stop all sending of the account; False when it was already halted."""
        key = self._keys.halt(account)
        created = bool(self._redis.hsetnx(key, "since", time.time()))
        if created:
            self._redis.hset(key, mapping={"code": code, "reason": reason})
        return created

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
            code=raw.get("code", ""), reason=raw.get("reason", ""), since=float(raw["since"])
        )

    def breaker(self, account: str) -> Breaker | None:
        raw: dict[str, str] = self._redis.hgetall(self._keys.breaker(account))  # type: ignore[assignment]
        if not raw or "since" not in raw:
            return None
        return Breaker(
            since=float(raw["since"]),
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
