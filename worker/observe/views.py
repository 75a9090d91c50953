"""The JSON shapes of jobs, dead letters and the status, built from stored state: what the
CLI prints and the HTTP service answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from worker.observe.status import AccountState, Snapshot
from worker.store.deadletters import DeadLetter
from worker.store.ratelimit import RateLimit
from worker.store.receipts import Receipt
from worker.store.records import Job
from worker.store.templates import TemplateHold


def iso(at: float | None, *, timespec: str = "milliseconds") -> str | None:
    """Unix seconds → ISO 8601 UTC (``2026-11-26T22:48:55.975Z``)."""
    if at is None:
        return None
    moment = datetime.fromtimestamp(at, UTC).isoformat(timespec=timespec)
    return moment.replace("+00:00", "Z")


def job_view(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "state": job.state.value,
        "account": job.account,
        "attempts": job.attempts,
        "last_code": job.last_code,
        "wamid": job.wamid,
        "priority": job.priority,
        "delivery": receipt_view(job.receipt),
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


def receipt_view(receipt: Receipt | None) -> dict[str, Any] | None:
    """What WhatsApp did with a sent job: ``{"status", "at", "error"}`` (error when failed)."""
    if receipt is None:
        return None
    return {"status": receipt.status.value, "at": iso(receipt.at), "error": receipt.error}


def status_view(
    snapshot: Snapshot, account: str, *, redis_url: str, rate: RateLimit
) -> dict[str, Any]:
    """The state of the queue and of every account; the top-level switches are ``account``'s.

    Each account's ``limits`` are the ones its calls are paced by (its own ceilings, else
    ``rate``'s, applied) and whether each was learned from the Gateway's headers; its ``halted``
    says who halted it: the operator, or the Gateway (a halt that heals itself).
    """
    state = snapshot.accounts.get(account) or AccountState(None, None, None, 0)
    return {
        "queue": {
            "name": snapshot.queue,
            "depth": snapshot.depth,
            "scheduled": snapshot.scheduled,
            "held": state.held,
            "in_flight": snapshot.in_flight,
        },
        "halted": _halt_view(state),
        "billing_breaker": "closed" if state.breaker is None else "open",
        "cooldown_until": iso(state.cooldown_until),
        "dlq": {
            "total": sum(snapshot.dead_letters.values()),
            "by_code": dict(sorted(snapshot.dead_letters.items())),
        },
        "send_rate_per_s": snapshot.sends_per_s,
        "workers": snapshot.workers,
        "store": {
            "kind": snapshot.engines.store.value,
            "primaries": snapshot.engines.primaries,
            "replicas": snapshot.engines.replicas,
        },
        "broker": {"kind": snapshot.engines.broker.value},
        "accounts": {
            name: {
                "halted": _halt_view(each),
                "billing_breaker": "closed" if each.breaker is None else "open",
                "cooldown_until": iso(each.cooldown_until),
                "bulk_paused_until": iso(each.bulk_paused_until),
                "depth": each.depth,
                "held": each.held,
                "dlq_total": each.dlq_total,
                "limits": limits_view(each, rate.for_account(name)),
                "templates_held": [template_hold_view(hold) for hold in each.templates_held],
            }
            for name, each in sorted(snapshot.accounts.items())
        },
        "redis": redis_url,
    }


def limits_view(state: AccountState, rate: RateLimit) -> dict[str, Any]:
    """The limits an account's calls are paced by; ``rate`` is that account's."""
    sec, per_min = rate.limits_in_force(state.learned_sec, state.learned_min)
    return {
        "sec": sec,
        "min": per_min,
        "learned": {"sec": state.learned_sec is not None, "min": state.learned_min is not None},
    }


def template_hold_view(hold: TemplateHold) -> dict[str, Any]:
    """One held template of an account, as ``status --json`` lists it."""
    return {
        "name": hold.name,
        "language": hold.language,
        "since": iso(hold.since),
        "reason": hold.reason,
        "jobs": hold.jobs,
    }


def _halt_view(state: AccountState) -> dict[str, Any] | None:
    halt = state.halt
    if halt is None:
        return None
    return {
        "code": halt.code,
        "reason": halt.reason,
        "since": iso(halt.since),
        "by": "operator" if halt.by_operator else "gateway",
    }


def dead_letter_view(record: DeadLetter) -> dict[str, Any]:
    view = record.to_dict()
    for name in ("enqueued_at", "parked_at", "expires_at"):
        # Microseconds: an export imported again keeps the DLQ's order to the microsecond.
        view[name] = iso(view[name], timespec="microseconds")
    return view
