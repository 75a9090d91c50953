"""After a wait for a rate-limit slot, a call looks at the halt, cooldown and breaker again.

Two real workers whose calls queue for slots (a low rate, many threads) against the sandbox;
the sandbox's log of received requests shows when calls arrived. Only calls already in flight
when a switch was recorded may arrive after it: none later than 50 ms.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.cluster import Sandbox, start_worker, worker_env
from tests.support.messages import text
from tests.support.processes import wait_for
from tests.support.switches import IN_FLIGHT_S, Recorded

pytestmark = [pytest.mark.e2e, pytest.mark.quiet]  # 50 ms windows: run alone


@pytest.fixture
def two_workers(redis_url, sandbox, tmp_path):
    """Starts two workers with the given rate and threads each; stops them at the end."""
    started = []

    def start(*, rate_per_sec: int, concurrency: int, **settings: str) -> None:
        env = worker_env(redis_url, sandbox.url, rate_per_sec=str(rate_per_sec), **settings)
        for name in ("a", "b"):
            log = tmp_path / f"{name}.log"
            started.append(start_worker(env, log, concurrency=concurrency))

    yield start
    for worker in started:
        worker.stop()


RETRY_AFTER_S = 2
PROBE_INTERVAL_S = 1.0
# A probe's call leaves some milliseconds after its slot is taken in Redis.
PROBE_SLACK_S = 0.1
# From the Gateway's answer to the cooldown written in Redis: one script call, on a busy machine.
ANSWER_TO_RECORD_S = 0.1


def late_arrivals(sandbox: Sandbox, since: float, until: float = float("inf")) -> list[dict]:
    return [r for r in sandbox.requests() if since + IN_FLIGHT_S < r["at"] < until]


def test_no_call_begins_after_a_halt(runtime, sandbox, two_workers):
    """AUTH_001 while calls wait for their slots: none of them reaches the Gateway after it."""
    two_workers(rate_per_sec=20, concurrency=6)
    runtime.producer.enqueue_many([text(i) for i in range(200)])
    wait_for(lambda: sandbox.stats()["accepted"] >= 10, what="sending under way")
    halt = Recorded(runtime.redis, runtime.keys.halt("default"))
    sandbox.script({"status": 401, "code": "AUTH_001", "group": "UNAUTHORIZED"})
    since = halt.wait()
    # Every waiting call has woken up once its slot (at most ~0.6 s away) came.
    wait_for(lambda: runtime.snapshot(lambda: 0).in_flight == 0, what="waiting calls gone")
    late = late_arrivals(sandbox, since)
    assert late == [], [r["at"] - since for r in late]
    assert runtime.dead_letters.counts() == {}


def test_no_call_begins_during_a_new_cooldown(runtime, sandbox, two_workers):
    """RATE_001 (retry after 2 s) while calls wait for slots: none arrives in the 2 s the
    Gateway asked for (the window is the Gateway's, not the cooldown the product recorded, so a
    cooldown cut short fails), and sending starts again after it."""
    two_workers(rate_per_sec=20, concurrency=6)
    runtime.producer.enqueue_many([text(i) for i in range(200)])
    wait_for(lambda: sandbox.stats()["accepted"] >= 10, what="sending under way")
    # Listening before the answer is scripted: else the first event heard could be the
    # cooldown's expiry, and the window below would be empty.
    recorded = Recorded(runtime.redis, runtime.keys.cooldown("default"))
    sandbox.script(
        {
            "status": 429,
            "code": "RATE_001",
            "group": "TOO_MANY_REQUESTS",
            "params": {"limit_type": "sec", "retry_after": f"{RETRY_AFTER_S}s"},
        }
    )
    until = wait_for(lambda: runtime.switches.cooldown_until("default"), what="the cooldown")
    began = recorded.wait()
    # Exactly retry_after from the answer, which came a moment before the cooldown was recorded.
    assert began + RETRY_AFTER_S - ANSWER_TO_RECORD_S <= until <= began + RETRY_AFTER_S
    wait_for(lambda: sandbox.stats()["accepted"] >= 30, timeout_s=15, what="sending again")
    assert late_arrivals(sandbox, began, began + RETRY_AFTER_S - ANSWER_TO_RECORD_S) == []


def test_billing_incident_costs_only_the_calls_in_flight_and_one_probe(
    runtime, sandbox, two_workers
):
    """Balance at 0 at 80/s: after the breaker opens, one probe reaches the Gateway, no more."""
    sandbox.configure(balance=0.01)  # ten messages
    two_workers(rate_per_sec=80, concurrency=10)
    recorded = Recorded(runtime.redis, runtime.keys.breaker("default"))
    ids = runtime.producer.enqueue_many([text(i) for i in range(300)])
    since = recorded.wait()
    wait_for(
        lambda: runtime.dead_letters.counts().get("BILL_001", 0) + 10 >= len(ids),
        timeout_s=30,
        what="every job parked",
    )
    late = late_arrivals(sandbox, since)
    assert len(late) <= 1, [r["at"] - since for r in late]  # the breaker's probe


def test_one_billing_probe_per_interval_across_workers(runtime, sandbox, two_workers):
    """No balance, a job due every 50 ms for 4 s, two workers, a probe interval of 1 s: after the
    breaker opens, the Gateway sees about one probe a second from the two workers together, never
    two within an interval."""
    sandbox.configure(balance=0)
    two_workers(rate_per_sec=80, concurrency=10, billing_probe_interval_s=str(PROBE_INTERVAL_S))
    recorded = Recorded(runtime.redis, runtime.keys.breaker("default"))
    start = datetime.now(UTC)
    runtime.producer.enqueue_many(
        [{"message": text(n), "send_at": start + timedelta(seconds=n * 0.05)} for n in range(80)]
    )
    since = recorded.wait()
    wait_for(
        lambda: runtime.dead_letters.counts().get("BILL_001", 0) >= 80,
        timeout_s=30,
        what="every job parked",
    )
    probes = [r["at"] for r in late_arrivals(sandbox, since)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(probes)]
    assert len(probes) >= 2, probes  # probes did run: the interval, not luck, spaced them
    assert all(gap >= PROBE_INTERVAL_S - PROBE_SLACK_S for gap in gaps), gaps
