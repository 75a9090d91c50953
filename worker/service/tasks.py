"""The Celery tasks: thin adapters around Delivery.deliver()."""

from __future__ import annotations

from collections.abc import Sequence

from worker.service.runtime import current_runtime

TASK_NAME = "msgworker.deliver"
BATCH_TASK_NAME = "msgworker.deliver_many"


def deliver_job(job_id: str, gen: int) -> str:
    """Deliver one dispatched job; returns what happened (for the worker's log)."""
    return current_runtime().delivery.deliver(job_id, gen).value


def deliver_jobs(dispatches: Sequence[Sequence[object]]) -> list[str]:
    """Deliver a few dispatched jobs, one after the other, as one broker message.

    Each job is claimed, sent and settled on its own (a crash mid-batch loses nothing: the jobs
    not begun come back with their leases, a claimed one when its claim runs out); the batch
    spreads the broker's cost over several sends, and each send's settlement claims the next job
    in the same Redis round trip.
    """
    pairs = [(str(job_id), int(str(gen))) for job_id, gen in dispatches]
    return [result.value for result in current_runtime().delivery.deliver_many(pairs)]
