"""What the read commands show: their JSON shapes, built from stored state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from worker.deadletters import DeadLetter
from worker.jobs import Job
from worker.state import AccountState, Snapshot


def iso(at: float | None) -> str | None:
    """Unix seconds → ISO 8601 UTC (``2026-11-26T22:48:55.975Z``)."""
    if at is None:
        return None
    moment = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
    return moment.replace("+00:00", "Z")


def job_view(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "state": job.state.value,
        "account": job.account,
        "attempts": job.attempts,
        "last_code": job.last_code,
        "wamid": job.wamid,
        "history": [
            {
                "at": iso(event.get("at")),
                "event": event.get("event"),
                "code": event.get("code"),
                "action": event.get("action"),
                "delay_s": event.get("delay_s"),
            }
            for event in job.history
        ],
    }


def status_view(snapshot: Snapshot, account: str, *, redis_url: str) -> dict[str, Any]:
    state = snapshot.accounts.get(account) or AccountState(None, None, None, 0)
    halt, breaker = state.halt, state.breaker
    return {
        "queue": {
            "name": snapshot.queue,
            "depth": snapshot.depth,
            "scheduled": snapshot.scheduled,
            "held": state.held,
        },
        "halted": None
        if halt is None
        else {"code": halt.code, "reason": halt.reason, "since": iso(halt.since)},
        "billing_breaker": "closed" if breaker is None else "open",
        "cooldown_until": iso(state.cooldown_until),
        "dlq": {
            "total": sum(snapshot.dead_letters.values()),
            "by_code": dict(sorted(snapshot.dead_letters.items())),
        },
        "redis": redis_url,
    }


def dead_letter_view(record: DeadLetter) -> dict[str, Any]:
    view = record.to_dict()
    for name in ("enqueued_at", "parked_at", "expires_at"):
        view[name] = iso(view[name])
    return view
