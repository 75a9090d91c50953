"""Jobs written straight into the job store, below the producer's checks (store and status tests)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from tests.support.messages import text
from worker.store.claims import Execution
from worker.store.jobs import JobStore
from worker.store.keys import Keys, lane_of
from worker.store.ratelimit import RateLimit
from worker.store.records import NewJob

KEYS = Keys("t:")


def add_job(
    jobs: JobStore,
    job_id: str = "j1",
    *,
    key: str | None = None,
    account: str = "default",
    due_in: float = 0.0,
    expires_in: float | None = None,
    now: float | None = None,
    priority: str = "normal",
    message: dict[str, Any] | None = None,
) -> str:
    """Write one job due ``due_in`` s after ``now`` (the real time unless given); its id back.
    Its message is a text unless given."""
    now = time.time() if now is None else now
    new = NewJob(
        id=job_id,
        account=account,
        key=key or job_id,
        message=text(job_id) if message is None else message,
        due_at=now + due_in,
        expires_at=None if expires_in is None else now + expires_in,
        priority=priority,
    )
    return jobs.add([new], now=now)[0]


def take(runtime: Any, job_id: str, *, lease_s: float = 30.0) -> int:
    """Take a job off its lane into the leases, as the pump does with each job it dispatches
    (promote.lua): a delivery begins only a dispatched job. Returns the job's gen."""
    job = runtime.jobs.get(job_id)
    member = f"{job.id}|{job.gen}"
    runtime.redis.zrem(runtime.keys.due(job.account, lane_of(job.priority)), member)
    runtime.redis.zadd(runtime.keys.leases, {member: time.time() + lease_s})
    return int(job.gen)


def _claim(runtime: Any, job_id: str, holder: str) -> Execution:
    """Dispatch and begin a queued job as a worker does; the execution that now holds it."""
    execution = Execution(job_id, take(runtime, job_id), holder=holder)
    claim = runtime.transitions.begin(
        execution, now=time.time(), lease_s=30, probe_interval_s=30, rate=RateLimit(1000, 100_000)
    )
    assert claim.verdict == "go"
    return execution


def send(runtime: Any, job_id: str, wamid: str) -> float:
    """Send a queued job the way a worker does (claim, then settle as sent as ``wamid``); returns
    when it was sent."""
    execution = _claim(runtime, job_id, "test-send")
    sent_at = time.time()
    runtime.transitions.mark_sent(execution, wamid, now=sent_at)
    return sent_at


def park(
    runtime: Any,
    job_id: str,
    *,
    code: str = "BILL_001",
    reason: str = "billing",
    **extra_fields: Any,
) -> None:
    """Park a queued job the way a worker does (claim, then settle with a dead letter); extra
    fields go into the record as they are (a newer version's fields, say)."""
    job = runtime.jobs.get(job_id)
    execution = _claim(runtime, job_id, "test-park")
    record = {
        "id": job_id,
        "idempotency_key": job.key,
        "account": job.account,
        "message": job.message,
        "code": code,
        "group": None,
        "status": 402,
        "description": "",
        "params": {},
        "reason": reason,
        "attempts": 1,
        "enqueued_at": job.enqueued_at,
        "parked_at": time.time(),
        "expires_at": job.expires_at,
        **extra_fields,
    }
    applied, _ = runtime.transitions.park(
        execution, now=time.time(), code=code, reason=reason, record=record
    )
    assert applied


def job_gens(into: list[Any]) -> Callable[[Sequence[Sequence[Any]]], None]:
    """A pump's dispatch that keeps each dispatch's job id and generation in ``into`` (its
    address aside: tests of the schedule compare what was dispatched, in order)."""

    def dispatch(batch: Sequence[Sequence[Any]]) -> None:
        into.extend((job_id, gen) for job_id, gen, *_ in batch)

    return dispatch
