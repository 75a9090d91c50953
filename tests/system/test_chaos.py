"""Chaos against real processes: kill -9 loops, warm shutdowns, Redis restarts, faults and
outages, a halt and a billing episode, delays past the visibility timeout, 100,000 scheduled
jobs. Every scenario ends on the invariants of tests/support/invariants.py; bench/soak.py runs
the same scenarios longer and bigger.
"""

from __future__ import annotations

import pytest

from tests.support import chaos
from tests.support.processes import wait_for
from worker.dev.localredis import LocalRedis

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def stage(redis_url, tmp_path):
    with chaos.staged(redis_url, tmp_path) as running:
        yield running
        assert running.secrets_leaked(max_keys=5000) == []


@pytest.mark.parametrize("at_most_once", [True, False], ids=["at-most-once", "at-least-once"])
def test_kill_9_loop_loses_nothing_and_duplicates_only_lost_answers(stage, at_most_once):
    """kill -9 every 1.5 s during 1,000 sends (100 ms latency): nothing lost; kills landed
    mid-call; sends repeated only by choice, never more than the calls in flight at the kills."""
    result = chaos.kill_loop(stage, jobs=1000, at_most_once=at_most_once, kill_every_s=1.5)
    report = result.report.assert_holds()
    assert result.figures["kills"] >= 2
    # A kill landed mid-call: the product found calls cut off before their answer.
    assert report.answer_lost, result.summary()
    assert report.extra_sends <= sum(result.figures["in_flight_at_kills"]), result.summary()
    if at_most_once:
        assert report.ambiguous_duplicates == {}
        assert set(report.parked) <= {"ambiguous"}
    else:
        assert report.parked == {}
        assert len(report.sent) == 1000
    assert report.pending == []


def test_sigterm_mid_send_and_restart_loses_and_duplicates_nothing(stage):
    """Warm shutdowns during 300 ms calls, a new worker each time: every job sent exactly once."""
    result = chaos.sigterm_restart(stage, jobs=400, rounds=3)
    report = result.report.assert_holds()
    assert result.figures["sigterms"] == 3
    assert report.duplicated == 0
    assert len(report.sent) == 400


def test_redis_restarts_mid_run_lose_nothing(tmp_path):
    """Append-only Redis restarted twice under load: the same workers and the producer carry on
    alone."""
    server = LocalRedis(tmp_path, appendonly=True)
    server.start()
    try:
        with chaos.staged(server.url, tmp_path) as stage:
            result = chaos.redis_restart(stage, server, jobs=600, restarts=2, gap_s=6)
            assert result.figures["worker_exits"] == 0
            report = result.report.assert_holds()
            assert len(report.sent) == 600
            assert report.real_duplicates == {}
            assert stage.secrets_leaked() == []
    finally:
        server.stop()


def test_losing_redis_while_sends_are_in_flight_does_not_stop_the_worker(tmp_path):
    """Redis restarted while four 1.5-second calls hold their broker messages unacked: the same
    worker reconnects, and the four jobs and four more are sent once.

    With kombu's own Redis transport the worker exits here, on AttributeError ('NoneType' object
    has no attribute 'hostname'): Celery 5.7.0 at the loss, when it closes the collected
    connection; 5.6 and 5.7 when a late ack reaches the old channel (worker/service/broker.py).
    """
    server = LocalRedis(tmp_path, appendonly=True)
    server.start()
    try:
        with chaos.staged(server.url, tmp_path, latency_ms=1500) as stage:
            worker = stage.start("w")
            worker.wait_ready()
            first = chaos.enqueue(stage, 4)
            wait_for(
                lambda: stage.sandbox.stats()["requests"] >= 4,
                timeout_s=30,
                what="4 calls in flight",
            )
            server.restart()
            wait_for(
                lambda: "Connection to broker lost" in worker.log(),
                timeout_s=30,
                what="the loss noticed",
            )
            second = chaos.enqueue(stage, 4, start=4)
            wait_for(lambda: stage.idle() or worker.process.poll() is not None, timeout_s=90)
            assert worker.process.poll() is None, worker.log()[-1500:]
            report = chaos.finish(
                stage, "Redis lost mid-send", first + second, {}
            ).report.assert_holds()
            assert len(report.sent) == 8
            assert report.duplicated == 0
    finally:
        server.stop()


def test_thirty_percent_faults_then_an_outage_then_recovery(stage):
    """30% mixed faults and a 10 s outage: after recovery and a replay every job is sent; the
    only repeats are slow answers the Gateway had accepted, and the OK metric matches."""
    result = chaos.faults_then_outage(stage, jobs=500, fault_rate=0.3, outage_s=10)
    report = result.report.assert_holds()
    assert len(report.sent) == 500
    faults = result.figures["faults"]
    assert set(faults) == {"auth_004", "html_502", "empty_503", "drop", "slow"}
    assert len(report.ambiguous_duplicates) <= faults["slow"]
    assert report.ok_metric == report.ok_expected
    assert result.figures["leaks"] == []


def test_halt_and_billing_episode_in_the_middle_of_a_run(stage):
    """AUTH_001 then an empty balance in a 600-job run on two workers: no call after the halt,
    resume and a top-up with `dlq replay --code BILL_001` send every job exactly once."""
    result = chaos.halt_and_billing(stage, jobs=600, billing_budget=100)
    report = result.report.assert_holds()
    figures = result.figures
    assert figures["late_sends_after_halt"] == 0
    assert figures["calls_while_halted"] == 0
    assert figures["pending_while_halted"] > 0
    assert figures["lost_while_halted"] == 0
    assert set(figures["parked_by_billing"]) == {"BILL_001"}
    assert not figures["breaker_open_at_end"]
    assert report.duplicated == 0
    assert len(report.sent) == 600
    assert report.ok_metric == report.ok_expected == 600
    assert figures["leaks"] == []


def test_delays_past_a_one_second_visibility_timeout_are_sent_once_never_early(stage):
    """300 jobs due 3 to 7 s ahead, visibility timeout 1 s, inline rate waits: each sent once, on time."""
    result = chaos.delays_past_visibility(stage, jobs=300)
    report = result.report.assert_holds()
    assert report.duplicated == 0
    assert len(report.sent) == 300
    assert result.figures["early"] == 0
    assert result.figures["max_late_s"] < 2.0


def test_hundred_thousand_scheduled_jobs_wait_in_redis_without_worker_memory(stage):
    """100,000 jobs for later: all scheduled, status shows them, worker RSS flat; the sample due
    soon is sent once, on time."""
    result = chaos.scheduled_many(stage, jobs=100_000, due_soon=200, wait_s=10)
    report = result.report.assert_holds()
    figures = result.figures
    assert len(report.sent) == 200
    assert report.duplicated == 0
    assert figures["status_scheduled"] >= 100_000
    assert figures["sample_still_scheduled"] == "200/200"
    assert figures["rss_growth_kib"] < 16 * 1024  # 100,000 jobs enqueued and 200 sent meanwhile
    assert figures["rss_growth_while_waiting_kib"] < 2 * 1024
    assert figures["early"] == 0
    assert figures["max_late_s"] < 1.5
