"""Receipts: what WhatsApp did with a sent message (its delivery statuses), as the Gateway's
webhooks report it.

A job sent as a wamid is indexed by it (``finish.lua``); ``ReceiptStore.apply`` records a
webhook's statuses on their jobs in one round trip (``statuses.lua``, with ``delivery.lua``). A
status for a wamid no job knows yet is kept ``EARLY_KEEP_S`` and applied when the send is
recorded; the statuses of at most ``EARLY_CAP`` such wamids are kept, the least recently heard of
dropped first (counted), so statuses for random wamids cannot fill Redis. The cap is one for the
deployment: a status names its wamid, not an account, and a wamid no job knows has none. Each
wamid keeps its own short list (the key the send's script already looks for, in the one command
it makes anyway), indexed by arrival for the cap.

The delivery only moves forward: sent < failed < delivered < read. A ``failed`` after
``delivered`` or ``read`` is ignored (``OUT_OF_ORDER``): a forged or replayed webhook must not
park, and so let a replay send again, a message WhatsApp delivered.

A ``failed`` status carries what it does to its job (``ReceiptAction`` and ``FailureTerms``,
decided in Python by ``send/receipt_rules.py``): parked with a reason, dropped, sent again after a
delay (the job pending again, its send-once entry for that wamid cleared), or the account's bulk
lane paused while the job is parked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis.asyncio

from worker.store.keys import Keys
from worker.store.protocol import STATUSES
from worker.store.scripts import script_source

# Statuses that come before their send is recorded wait this long, at most this many a wamid,
# for at most EARLY_CAP wamids.
EARLY_KEEP_S = 60
EARLY_MAX = 8
EARLY_CAP = 10_000


class ReceiptStatus(StrEnum):
    """What WhatsApp last reported of a sent message."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


class ReceiptAction(StrEnum):
    """What a failed delivery leads to (the routing table's delivery part decides)."""

    PARK = "park"  # a dead letter (its reason in the terms): the payload moves into it
    DROP = "drop"  # recorded as failed; the payload is dropped
    # WhatsApp paused or disabled the job's template: the job goes back to pending, held, and
    # so does every pending job of its account using that template (worker.store.templates)
    HOLD_TEMPLATE = "hold_template"
    RESCHEDULE = "reschedule"  # pending again after a delay (the terms'); sent once more
    PAUSE_BULK = "pause_bulk"  # the account's bulk lane waits (the terms'); the job is parked


@dataclass(frozen=True)
class FailureTerms:
    """The numbers and reason a failed status's action takes (``delivery.lua`` applies them).

    ``reason``: park's dead-letter reason. ``delays_s``: reschedule's delays, the job's n-th
    reschedule of this kind waits the n-th (the last one beyond); ``uses_attempt``: the call
    counts as an attempt (else as a reschedule); ``limit``: once the job's attempts (else
    reschedules) reach it, it is parked ``retries_exhausted`` instead. ``pause_s``: how long
    pause_bulk pauses the lane. ``slow_pair``: the job's recipient waits the (first) delay too.
    """

    reason: str = "undelivered"
    delays_s: tuple[float, ...] = ()
    uses_attempt: bool = False
    limit: int = 0
    pause_s: float = 0.0
    slow_pair: bool = False  # the recipient's pair counts as just answered (pacing on, 131056)


class Applied(StrEnum):
    APPLIED = "applied"
    STALE = "stale"  # a repeat, or older than what the job already has
    OUT_OF_ORDER = "out_of_order"  # failed after delivered or read: ignored
    UNMATCHED = "unmatched"  # no job has this wamid (yet): kept a while


@dataclass(frozen=True)
class Receipt:
    """A job's delivery as recorded: the latest status, when it happened, the error if failed."""

    status: ReceiptStatus
    at: float
    error: dict[str, Any] | None = None

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> Receipt | None:
        status = raw.get("delivery_status")
        if not status:
            return None
        error = raw.get("delivery_error")
        return cls(
            ReceiptStatus(status), float(raw["delivery_at"]), json.loads(error) if error else None
        )


@dataclass(frozen=True)
class StatusUpdate:
    """One status of a webhook, validated and bounded; ``code``/``action`` for failed only."""

    wamid: str
    status: ReceiptStatus
    at: float
    error: dict[str, Any] | None = None
    code: str = ""
    action: ReceiptAction | None = None
    description: str = ""
    hold_reason: str = ""  # for HOLD_TEMPLATE: paused or disabled (templates.HoldReason)
    terms: FailureTerms = FailureTerms()

    def to_json(self) -> str:
        value = {
            "wamid": self.wamid,
            "status": self.status.value,
            "at": self.at,
            "error": self.error,
            "code": self.code,
            "action": self.action.value if self.action else "",
            "description": self.description,
            "hold_reason": self.hold_reason,
            "reason": self.terms.reason,
            "delays": list(self.terms.delays_s),
            "uses_attempt": self.terms.uses_attempt,
            "limit": self.terms.limit,
            "pause_s": self.terms.pause_s,
            "slow_pair": self.terms.slow_pair,
        }
        return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class Applying:
    """What became of a webhook's statuses, and how many wamids' early statuses the cap dropped
    to make room for this webhook's."""

    results: list[ReceiptOutcome]
    dropped: int


@dataclass(frozen=True)
class ReceiptOutcome:
    """What became of one status: applied or not, the job's account, acceptance → delivered."""

    applied: Applied
    account: str
    delivered_after_s: float | None


class ReceiptStore:
    """Applies webhook statuses to jobs, one round trip for a whole request (redis.asyncio)."""

    def __init__(self, client: redis.asyncio.Redis, keys: Keys) -> None:
        self._keys = keys
        self._apply = client.register_script(script_source(STATUSES))

    async def apply(self, updates: list[StatusUpdate], *, now: float) -> Applying:
        if not updates:
            return Applying([], 0)
        values = {
            "prefix": self._keys.prefix,
            "now": now,
            "early_ms": EARLY_KEEP_S * 1000,
            "early_max": EARLY_MAX,
            "early_cap": EARLY_CAP,
        }
        each = [{"status": u.to_json()} for u in updates]
        reply = await self._apply(args=STATUSES.arguments(values, each=each))
        *parts, dropped = [p.decode() if isinstance(p, bytes) else str(p) for p in reply]
        results = [
            ReceiptOutcome(
                Applied(parts[i]), parts[i + 1], float(parts[i + 2]) if parts[i + 2] else None
            )
            for i in range(0, len(parts), 3)
        ]
        return Applying(results, int(dropped))
