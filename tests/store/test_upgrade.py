"""Records written by versions before retention: a starting worker takes the old expiry off
every job not yet sent, once."""

from __future__ import annotations

import time

from worker.store.jobs import JobStore
from worker.store.keys import Keys
from worker.store.records import NewJob
from worker.store.upgrade import keep_pending_jobs

KEYS = Keys("u:")
BODY = {"to": "905321234567", "type": "text", "text": {"body": "hi"}}
OLD_TTL_S = 7 * 24 * 3600


def old_style_job(redis_client, jobs: JobStore, job_id: str, *, state: str) -> list[str]:
    """A job as older versions left it: every key with a seven-day expiry from enqueue."""
    now = time.time()
    jobs.add([NewJob(id=job_id, account="default", key=job_id, message=BODY, due_at=now)], now=now)
    redis_client.hset(KEYS.job(job_id), "state", state)
    names = [KEYS.job(job_id), KEYS.history(job_id), KEYS.idempotency("default", job_id)]
    for name in names:
        redis_client.expire(name, OLD_TTL_S)
    return names


def test_pending_jobs_lose_the_old_expiry_and_sent_ones_keep_it(redis_client):
    """Queued, scheduled, held and parked jobs stop expiring; a sent job still ages out."""
    jobs = JobStore(redis_client, KEYS)
    pending = {
        state: old_style_job(redis_client, jobs, f"{n:032x}", state=state)
        for n, state in enumerate(("queued", "scheduled", "held", "parked", "sending"), start=1)
    }
    sent = old_style_job(redis_client, jobs, f"{99:032x}", state="sent")

    assert keep_pending_jobs(redis_client, KEYS, chunk=2) == len(pending)

    for state, names in pending.items():
        assert [redis_client.ttl(name) for name in names] == [-1, -1, -1], state
    assert all(redis_client.ttl(name) > 0 for name in sent)


def test_the_pass_runs_once_per_deployment(redis_client):
    """A marker remembers the pass: the next worker start scans nothing."""
    jobs = JobStore(redis_client, KEYS)
    keep_pending_jobs(redis_client, KEYS)
    names = old_style_job(redis_client, jobs, f"{7:032x}", state="queued")

    assert keep_pending_jobs(redis_client, KEYS) == 0
    assert redis_client.ttl(names[0]) > 0
