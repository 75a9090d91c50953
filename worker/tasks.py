"""The Celery task: a thin adapter around Delivery.deliver()."""

from __future__ import annotations

from worker.runtime import current_runtime

TASK_NAME = "msgworker.deliver"


def deliver_job(job_id: str, gen: int) -> str:
    """Deliver one dispatched job; returns what happened (for the worker's log)."""
    return current_runtime().delivery.deliver(job_id, gen).value
