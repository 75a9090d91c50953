"""A job's page in words: its delivery error as text, and its history with repeated waits on one
line (a job behind an open breaker gains a ``wait`` row a second; 33 rows say one thing)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# What each kind of wait was waiting for, in the operator's words.
WAITS = {
    "breaker_wait": "behind the billing breaker",
    "cooldown_wait": "out the Gateway's cooldown",
    "rate_wait": "for a rate-limit slot",
    "replicas_wait": "for the Redis replicas",
}
WAIT_EVENT = "wait"


@dataclass(frozen=True)
class HistoryRow:
    """One line of a job's history: one event, or ``times`` waits alike from ``at`` to ``until``."""

    at: str | None
    event: str
    code: str | None
    action: str | None
    delay_s: float | None
    times: int = 1
    until: str | None = None

    @property
    def words(self) -> str:
        """The line in words where it says more than its columns: a run of waits."""
        if self.event != WAIT_EVENT:
            return ""
        what = WAITS.get(self.action or "", "")
        waited = f"waited {what}".strip()
        if self.times == 1:
            return waited
        return f"{waited} ×{self.times}, from {self.at} to {self.until}"  # noqa: RUF001 - times


def collapse_waits(history: Iterable[Mapping[str, Any]]) -> list[HistoryRow]:
    """The history's rows, each run of waits of the same kind one row (``times``, ``until``)."""
    rows: list[HistoryRow] = []
    for event in history:
        row = HistoryRow(
            at=event.get("at"),
            event=str(event.get("event") or ""),
            code=event.get("code"),
            action=event.get("action"),
            delay_s=event.get("delay_s"),
        )
        last = rows[-1] if rows else None
        if (
            last is not None
            and row.event == WAIT_EVENT
            and (last.event, last.action, last.code) == (row.event, row.action, row.code)
        ):
            rows[-1] = HistoryRow(
                last.at, last.event, last.code, last.action, row.delay_s, last.times + 1, row.at
            )
        else:
            rows.append(row)
    return rows


def delivery_error_text(error: Mapping[str, Any] | None) -> str:
    """A failed delivery's error as one line: ``131026 Message undeliverable: <message>; <details>``
    (each text once)."""
    if not error:
        return ""
    texts = [str(error[name]) for name in ("title", "message", "details") if error.get(name)]
    distinct = list(dict.fromkeys(texts))
    code = error.get("code")
    head = " ".join(str(part) for part in (code, *distinct[:1]) if part not in (None, ""))
    rest = "; ".join(distinct[1:])
    return f"{head}: {rest}" if rest else head
