"""Send-once is per idempotency key, not per job id: two jobs that carry the same key (the key's
enqueue record aged out between them, or an import brought one back) never both call the
Gateway, even when both are begun at the same moment."""

from __future__ import annotations

import threading
import time

import pytest

from tests.support.jobs import KEYS, add_job
from worker.outcome import Outcome
from worker.store.claims import Execution, Verdict
from worker.store.jobs import JobStore
from worker.store.ratelimit import RateLimit
from worker.store.states import JobState

RATE = RateLimit(per_sec=1000, per_min=100_000)
KEY = "order-42"


@pytest.fixture
def jobs(redis_client):
    store = JobStore(redis_client, KEYS)
    add_job(store, "first", key=KEY)
    redis_client.delete(KEYS.idempotency("default", KEY))  # as if its enqueue record aged out
    add_job(store, "second", key=KEY)
    return store


def begin(transitions, job_id, holder):
    return transitions.begin(
        Execution(job_id, 1, holder), now=time.time(), lease_s=5, probe_interval_s=5, rate=RATE
    )


def begin_together(transitions):
    """Both jobs begun from two threads released at once; their verdicts by job id."""
    barrier = threading.Barrier(2)
    verdicts = {}

    def run(job_id):
        barrier.wait()
        verdicts[job_id] = begin(transitions, job_id, holder=f"worker-{job_id}").verdict

    threads = [threading.Thread(target=run, args=(job_id,)) for job_id in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return verdicts


def test_the_two_jobs_are_distinct(jobs):
    """The setup holds two jobs with one key (ids differ), both queued."""
    first, second = jobs.get("first"), jobs.get("second")
    assert (first.key, second.key) == (KEY, KEY)
    assert first.state is second.state is JobState.QUEUED


def test_two_jobs_with_one_key_begun_at_once_make_one_call(jobs, transitions):
    """Begun at the same moment, exactly one is told to call; the other waits (busy)."""
    verdicts = begin_together(transitions)
    assert sorted(v.value for v in verdicts.values()) == sorted(["go", "busy"])


def test_once_one_is_sent_the_other_is_a_duplicate_without_a_call(jobs, transitions):
    """After the caller's send is recorded, the other job is sent as that wamid, with no call."""
    verdicts = begin_together(transitions)
    [caller] = [job_id for job_id, verdict in verdicts.items() if verdict is Verdict.GO]
    [other] = [job_id for job_id in verdicts if job_id != caller]
    transitions.mark_sent(Execution(caller, 1, f"worker-{caller}"), "wamid.once", now=time.time())
    claim = begin(transitions, other, holder="later")
    assert (claim.verdict, claim.detail) == (Verdict.DUPLICATE, "wamid.once")
    assert jobs.get(other).state is JobState.SENT
    assert jobs.get(other).wamid == "wamid.once"


def test_a_failed_call_frees_the_key_for_the_other_job(jobs, transitions):
    """A call that failed (a retry is due) releases the key: the other job may now call."""
    verdicts = begin_together(transitions)
    [caller] = [job_id for job_id, verdict in verdicts.items() if verdict is Verdict.GO]
    [other] = [job_id for job_id in verdicts if job_id != caller]
    assert transitions.retry(
        Execution(caller, 1, f"worker-{caller}"),
        now=time.time(),
        delay_s=60,
        action="backoff",
        outcome=Outcome(code="GW_500"),
    )
    assert begin(transitions, other, holder="later").verdict is Verdict.GO
