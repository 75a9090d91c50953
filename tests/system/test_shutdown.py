"""A warm shutdown ends with the sends under way: the jobs queued behind them in their broker
message are handed back, and another worker sends each of them once, at once."""

from __future__ import annotations

import time

from tests.support.cluster import worker_env
from tests.support.invariants import check
from tests.support.messages import text
from tests.support.processes import wait_for
from worker.store.states import JobState

JOBS = 16
LATENCY_S = 0.3


def test_a_warm_shutdown_hands_back_the_rest_of_a_group(
    runtime, sandbox, redis_url, workers, tmp_path
):
    """One thread holding a group of 16 at 0.3 s a call stops after the call in flight, not
    after the group's 4.8 s; a worker started then sends the other 15 within seconds (not after
    their half-minute leases), every message once."""
    sandbox.configure(latency_ms=LATENCY_S * 1000)
    env = worker_env(redis_url, sandbox.url)
    first = workers(env, tmp_path / "first.log", concurrency=1)
    first.wait_ready()
    ids = runtime.producer.enqueue_many([text(n) for n in range(JOBS)])
    wait_for(lambda: sandbox.stats()["accepted"] >= 1, timeout_s=15, what="the group's first send")

    stopping = time.monotonic()
    first.stop(timeout_s=30)
    assert time.monotonic() - stopping < 3 * LATENCY_S + 1.0
    sent_before = sandbox.stats()["accepted"]
    assert sent_before < JOBS // 2

    second = workers(env, tmp_path / "second.log", concurrency=4)
    second.wait_ready()
    restarted = time.monotonic()
    wait_for(
        lambda: all(runtime.jobs.get(i).state is JobState.SENT for i in ids),
        timeout_s=20,
        what="every job sent",
    )
    assert time.monotonic() - restarted < 10  # handed back, not waiting for the leases (30 s)
    report = check(ids, runtime, sandbox.messages()).assert_holds()
    assert (len(report.sent), report.accepted) == (JOBS, JOBS)
