"""Jobs written straight into the job store, below the producer's checks (store and status tests)."""

from __future__ import annotations

import time

from tests.support.messages import text
from worker.store.jobs import JobStore, NewJob
from worker.store.keys import Keys

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
) -> str:
    """Write one job due ``due_in`` s after ``now`` (the real time unless given); its id back."""
    now = time.time() if now is None else now
    new = NewJob(
        id=job_id,
        account=account,
        key=key or job_id,
        message=text(job_id),
        due_at=now + due_in,
        expires_at=None if expires_in is None else now + expires_in,
    )
    return jobs.add([new], now=now)[0]
