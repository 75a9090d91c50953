"""Incidents: one alert per incident, across every worker, decided in Redis.

``Incidents`` decides whether something is news (an incident opens or resolves); only then does
an ``Alert`` go to the notifier (``worker.observe.sinks.AlertDispatcher`` in production), which
delivers it off the sending path.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import redis

from worker.store.keys import Keys
from worker.store.protocol import INCIDENT_OPEN
from worker.store.scripts import load_script


class AlertKind(StrEnum):
    HALT = "halt"
    BILLING = "billing"
    RETRIES_EXHAUSTED = "retries_exhausted"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


CRITICAL_KINDS = frozenset({AlertKind.HALT, AlertKind.BILLING})


class Runbook(StrEnum):
    """Sections of docs/runbooks.md (their anchors) that incidents link: the alerts, and the
    console's next step for each open incident."""

    BILLING = "balance-ran-out-bill_001"
    HALTED = "sending-halted"
    RATE_LIMITED = "rate-limited-429"
    DEAD_LETTERS = "dead-letters-keep-growing"
    TEMPLATES = "a-template-is-paused-or-disabled"
    STANDING = "bulk-sending-paused-the-senders-standing"


# Each kind's runbook: its section of docs/runbooks.md, relative to the repository's root, as
# the Prometheus rules link theirs (the rule a kind's alert silences in Alertmanager links the
# same section).
RUNBOOK_URLS = {
    kind: f"docs/runbooks.md#{runbook.value}"
    for kind, runbook in (
        (AlertKind.HALT, Runbook.HALTED),
        (AlertKind.BILLING, Runbook.BILLING),
        (AlertKind.RETRIES_EXHAUSTED, Runbook.DEAD_LETTERS),
    )
}


@dataclass(frozen=True)
class Alert:
    """One change of an incident: it started firing, or it resolved."""

    kind: AlertKind
    status: AlertStatus
    account: str
    summary: str
    code: str | None = None
    details: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.time)  # unix time of this change
    since: float | None = None  # unix time the incident opened, when known


class Notifier(Protocol):
    """Where alerts go: notified without waiting, closed when the process is done."""

    def notify(self, alert: Alert) -> None: ...

    def close(self, timeout_s: float = 5.0) -> None: ...


class Incidents:
    """One alert per incident, across all workers: de-duplication in Redis."""

    def __init__(
        self,
        redis: redis.Redis,
        keys: Keys,
        dispatcher: Notifier,
        *,
        on_fire: Callable[[AlertKind, str], None] | None = None,
    ) -> None:
        self._on_fire = on_fire
        self._redis = redis
        self._keys = keys
        self._dispatcher = dispatcher
        self._open_script = load_script(redis, INCIDENT_OPEN)

    def open(
        self,
        kind: AlertKind,
        account: str,
        *,
        summary: str,
        code: str | None = None,
        details: dict[str, str] | None = None,
    ) -> bool:
        """Open the incident and alert, unless it is already open; True when this call opened it."""
        now = time.time()
        fields = {"since": repr(now), "code": code or "", "summary": summary}
        keys = INCIDENT_OPEN.key_list({"incident": self._keys.incident(kind, account)})
        args = INCIDENT_OPEN.arguments(
            {}, each=[{"field": name, "value": value} for name, value in fields.items()]
        )
        opened = bool(self._open_script(keys=keys, args=args))
        if opened:
            if self._on_fire is not None:
                self._on_fire(kind, account)
            self._dispatcher.notify(
                Alert(
                    kind=kind,
                    status=AlertStatus.FIRING,
                    account=account,
                    summary=summary,
                    code=code,
                    details=dict(details or {}),
                    at=now,
                    since=now,
                )
            )
        return opened

    def resolve(self, kind: AlertKind, account: str, *, summary: str) -> bool:
        """Close the incident and alert, if it was open; True when this call closed it."""
        key = self._keys.incident(kind, account)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hgetall(key)
        pipe.delete(key)
        incident, deleted = pipe.execute()
        if not deleted:
            return False
        since = incident.get("since")
        self._dispatcher.notify(
            Alert(
                kind=kind,
                status=AlertStatus.RESOLVED,
                account=account,
                summary=summary,
                # The firing alert's code: Alertmanager matches the two by their labels.
                code=incident.get("code") or None,
                since=float(since) if since else None,
            )
        )
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout_s``) and stop the sinks."""
        self._dispatcher.close(timeout_s)

    def is_open(self, kind: AlertKind, account: str) -> bool:
        return bool(self._redis.exists(self._keys.incident(kind, account)))

    def note_retries_exhausted(
        self,
        account: str,
        *,
        now: float,
        threshold: int = 10,
        window_s: float = 300.0,
        code: str | None = None,
    ) -> None:
        """Count one retries_exhausted park; at ``threshold`` in the window, open the incident."""
        key = self._keys.exhausted(account)
        pipe = self._redis.pipeline(transaction=True)
        pipe.zadd(key, {uuid.uuid4().hex: now})
        pipe.zremrangebyscore(key, "-inf", f"({now - window_s!r}")
        pipe.zcard(key)
        pipe.expire(key, math.ceil(window_s) + 1)
        count = int(pipe.execute()[2])
        if count >= threshold:
            self.open(
                AlertKind.RETRIES_EXHAUSTED,
                account,
                summary=(
                    f"{count} jobs of account {account} parked after exhausting their retries "
                    f"within {window_s:g} s"
                ),
                code=code,
                details={"count": str(count), "window_s": f"{window_s:g}"},
            )

    def resolve_quiet_exhausted(self, account: str, *, now: float, window_s: float = 300.0) -> None:
        """Resolve the retries_exhausted incident once its window holds no park (a successful
        send that found it open asks; the settlement's own script says whether it is)."""
        if not self.is_open(AlertKind.RETRIES_EXHAUSTED, account):
            return
        recent = self._redis.zcount(self._keys.exhausted(account), f"({now - window_s!r}", "+inf")
        if int(recent) == 0:
            self.resolve(
                AlertKind.RETRIES_EXHAUSTED,
                account,
                summary=f"no job of account {account} exhausted its retries in {window_s:g} s",
            )
