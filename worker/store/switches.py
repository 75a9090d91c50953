"""The account-wide switches operators see and flip: halt, billing breaker, cooldown; and the
bulk pause Meta's doubts about the sender set (131048, 130429), which ends by itself.

Every change of a switch is one atomic step (a script), so no reader ever meets half a switch.
Readers still take any record as it comes: a switch whose fields are missing or unreadable
(written by another version, or by hand) is on, since an unknown time.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import redis

from worker.store.history import history_event
from worker.store.keys import LANES, Keys
from worker.store.protocol import HALT, RESUME
from worker.store.scripts import load_script

MANUAL_HALT_CODE = "MANUAL"
# Who halted an account (the halt's ``by``): an operator's halt ends only with ``resume``.
OPERATOR = "operator"


@dataclass(frozen=True)
class Halt:
    code: str
    reason: str
    since: float | None  # None: unknown
    by: str = ""  # OPERATOR, or empty: the Gateway's answer (records of older versions say none)

    @property
    def by_operator(self) -> bool:
        """An operator's halt; one of an older version without ``by`` is by its MANUAL code."""
        return self.by == OPERATOR or (not self.by and self.code == MANUAL_HALT_CODE)


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
        self._resume = load_script(client, RESUME)
        self._halt = load_script(client, HALT)

    def halt(self, account: str, *, reason: str, code: str = MANUAL_HALT_CODE) -> bool:
        """Stop all sending of the account until ``resume``; False when it was already halted
        (a halt the Gateway caused becomes the operator's: it no longer ends by itself)."""
        fields = {"since": repr(time.time()), "code": code, "reason": reason, "by": OPERATOR}
        keys = HALT.key_list({"halt": self._keys.halt(account)})
        args = HALT.arguments(
            {"channel": self._keys.switched, "account": account},
            each=[{"field": name, "value": value} for name, value in fields.items()],
        )
        return bool(self._halt(keys=keys, args=args))

    def resume(self, account: str) -> int:
        """Lift the halt and release every held job; returns how many were released."""
        now = time.time()
        event = history_event(now, "released", action="resume")
        return self._resumed(account, now, event, gateway_only=False)

    def auto_resume(self, account: str) -> int | None:
        """``resume`` once a probe found the key working: only a halt the Gateway caused is lifted
        (None for an operator's), and the released jobs' history says ``auto_resumed``."""
        now = time.time()
        event = history_event(now, "auto_resumed", action="auto_resume")
        released = self._resumed(account, now, event, gateway_only=True)
        return None if released < 0 else released

    def _resumed(self, account: str, now: float, event: str, *, gateway_only: bool) -> int:
        values = {
            "prefix": self._keys.prefix,
            "account": account,
            "now": now,
            "event": event,
            "gateway_only": "1" if gateway_only else "0",
        }
        k = self._keys
        keys = {
            "halt": k.halt(account),
            "halt_probe": k.halt_probe(account),
            "held": k.held(account),
            "scheduled_accounts": k.scheduled_accounts,
            **{f"due_{lane}": k.due(account, lane) for lane in LANES},
        }
        return int(self._resume(keys=RESUME.key_list(keys), args=RESUME.arguments(values)))

    def probe_due(self, account: str, interval_s: float) -> bool:
        """Take the account's halt-probe lease for ``interval_s``: one probe per interval across
        every worker; False while another's lease runs."""
        key = self._keys.halt_probe(account)
        return bool(self._redis.set(key, "1", nx=True, px=max(1, int(interval_s * 1000))))

    def held_message(self, account: str, *, look_at: int = 10) -> dict[str, Any] | None:
        """The payload of one of the account's held jobs (the first readable), else None."""
        for job_id in self._redis.lrange(self._keys.held(account), 0, look_at - 1):
            raw = self._redis.hget(self._keys.job(str(job_id)), "message")
            with suppress(TypeError, ValueError):
                message = json.loads(raw)  # type: ignore[arg-type]
                if isinstance(message, dict):
                    return message
        return None

    def halted(self, account: str) -> Halt | None:
        raw: dict[str, str] = self._redis.hgetall(self._keys.halt(account))  # type: ignore[assignment]
        if not raw:
            return None
        return Halt(
            code=raw.get("code", ""),
            reason=raw.get("reason", ""),
            since=_time(raw, "since"),
            by=raw.get("by", ""),
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

    def bulk_paused_until(self, account: str) -> float | None:
        """When the account's bulk lane is dispatched again (None: it is not paused)."""
        value = self._redis.get(self._keys.bulk_paused(account))
        return int(value) / 1000 if value else None

    def clear_cooldown(self, account: str) -> bool:
        """End the account's RATE_001 cooldown now; False when there was none."""
        return bool(self._redis.delete(self._keys.cooldown(account)))

    def held_count(self, account: str) -> int:
        return int(self._redis.llen(self._keys.held(account)))
