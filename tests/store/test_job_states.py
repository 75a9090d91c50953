"""A job's derived sets of states mean what the scripts do, against a real Redis."""

from __future__ import annotations

import time

import pytest

from tests.support.jobs import KEYS, add_job
from worker.store.claims import Execution, Verdict
from worker.store.ratelimit import RateLimit
from worker.store.states import SETTLED, JobState

RATE = RateLimit(per_sec=1000, per_min=100_000)


@pytest.mark.parametrize("state", list(JobState), ids=str)
def test_a_settlement_is_refused_exactly_for_a_settled_job(jobs, redis_client, transitions, state):
    """The execution that holds a job's claim settles it unless the job is already settled (sent,
    held or parked, by a settlement before): then nothing is recorded, whatever the claim says."""
    add_job(jobs)
    execution = Execution("j1", 1, "a")
    now = time.time()
    began = transitions.begin(execution, now=now, lease_s=5, probe_interval_s=5, rate=RATE)
    assert began.verdict is Verdict.GO
    redis_client.hset(KEYS.job("j1"), "state", state.value)
    recorded = transitions.retry(execution, now=now, delay_s=1, action="backoff")
    assert recorded is (state not in SETTLED)
