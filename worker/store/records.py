"""A job's record as stored and read back, and the states it moves through.

A pending job is always in exactly one place: the schedule (its account's lane, ``Keys.due``,
``id|gen`` by when it may go), the leases (dispatched, being sent) or the account's hold list.
Broker messages only dispatch ``(id, gen)``; a stale ``gen`` is dropped: no re-delivery acts twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from worker.store.receipts import Receipt
from worker.store.states import JobState


@dataclass(frozen=True)
class NewJob:
    """A validated job ready to be written."""

    id: str
    account: str
    key: str
    message: dict[str, Any]
    due_at: float
    expires_at: float | None = None
    priority: str = "normal"


@dataclass(frozen=True)
class Job:
    """A job record as read back."""

    id: str
    account: str
    key: str
    message: dict[str, Any]
    state: JobState
    gen: int
    attempts: int
    reschedules: int
    enqueued_at: float
    updated_at: float
    due_at: float | None = None
    expires_at: float | None = None
    last_code: str | None = None
    wamid: str | None = None
    parked_reason: str | None = None
    held_reason: str | None = None  # template_paused for a job held behind its template
    history: list[dict[str, Any]] = field(default_factory=list)
    priority: str = "normal"
    receipt: Receipt | None = None  # what WhatsApp did with it once sent (webhooks)

    @classmethod
    def from_hash(cls, raw: dict[str, str], history: list[str]) -> Job:
        def number(name: str) -> float | None:
            value = raw.get(name, "")
            return float(value) if value else None

        return cls(
            id=raw["id"],
            account=raw["account"],
            key=raw["key"],
            message=json.loads(raw.get("message") or "{}"),  # none once read or undelivered
            state=JobState(raw.get("state", JobState.SENDING)),
            gen=int(raw.get("gen", 0)),
            attempts=int(raw.get("attempts", 0)),
            reschedules=int(raw.get("reschedules", 0)),
            enqueued_at=float(raw["enqueued_at"]),
            updated_at=float(raw.get("updated_at") or raw["enqueued_at"]),
            due_at=number("due_at"),
            expires_at=number("expires_at"),
            last_code=raw.get("last_code") or None,
            wamid=raw.get("wamid") or None,
            parked_reason=raw.get("parked_reason") or None,
            held_reason=raw.get("held_reason") or None,
            history=[json.loads(line) for line in history],
            priority=raw.get("priority") or "normal",
            receipt=Receipt.from_hash(raw),
        )
