"""The Celery tasks: thin adapters around Delivery.deliver()."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

from worker.service.runtime import current_runtime
from worker.store.claims import Address

TASK_NAME = "msgworker.deliver"
BATCH_TASK_NAME = "msgworker.deliver_many"


def deliver_job(job_id: str, gen: int, *address: str) -> str:
    """Deliver one dispatched job; returns what happened (for the worker's log). ``address``:
    the job's account, idempotency key and priority, as the pump read them (none in a message
    an older pump published)."""
    return current_runtime().delivery.deliver(job_id, gen, address_of(address)).value


def deliver_jobs(dispatches: Sequence[Sequence[object]]) -> list[str]:
    """Deliver a few dispatched jobs, one after the other, as one broker message.

    Each job is claimed, sent and settled on its own (a crash mid-batch loses nothing: the jobs
    not begun come back with their leases, a claimed one when its claim runs out); the batch
    spreads the broker's cost over several sends, and each send's settlement claims the next job
    in the same Redis round trip. Each dispatch is ``[id, gen, account, key, priority]``, or
    ``[id, gen]`` from an older pump.
    """
    pairs = [(str(dispatch[0]), int(str(dispatch[1]))) for dispatch in dispatches]
    addresses = [address_of(dispatch[2:]) for dispatch in dispatches]
    return [r.value for r in current_runtime().delivery.deliver_many(pairs, addresses)]


def address_of(parts: Sequence[object]) -> Address | None:
    """The address a dispatch carries, or None when it carries none."""
    if len(parts) != len(fields(Address)):
        return None
    account, key, priority = (str(part) for part in parts)
    return Address(account, key, priority)
