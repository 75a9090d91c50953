"""The status snapshot (worker/observe/status.py) read from a real Redis: the figures
`msgworker status` and the gauges show."""

from __future__ import annotations

import json

import pytest

from tests.support.jobs import KEYS, add_job
from worker.observe import metrics
from worker.observe.status import RATE_WINDOW_S, Snapshot, take_snapshot
from worker.observe.workers import ALIVE_S, Heartbeat, WorkerInfo
from worker.store.schedule import Pump
from worker.store.templates import HeldBy, HoldReason, TemplateHolds, hold_record

NOW = 1_900_000_000.0


def snapshot(redis_client, in_broker=0) -> Snapshot:
    return take_snapshot(redis_client, KEYS, queue="q", broker_depth=lambda: in_broker, now=NOW)


def park(redis_client, job_id, account, code="MSG_002"):
    """A dead letter as the settlement writes it."""
    record = json.dumps({"id": job_id, "account": account, "code": code})
    redis_client.set(KEYS.dead_letter(job_id), record)
    redis_client.zadd(KEYS.dead_letter_index, {job_id: NOW})
    redis_client.hincrby(KEYS.dead_letter_counts, code, 1)


def test_jobs_are_counted_where_they_wait(jobs, redis_client):
    """Due now, due later, dispatched and still in the broker, dispatched and being sent."""
    for n in range(4):
        add_job(jobs, f"due{n}", now=NOW)
    add_job(jobs, "later", now=NOW, due_in=60)
    Pump(redis_client, KEYS, lambda _: None, lambda: 0, batch=2).pump_once(NOW)
    snap = snapshot(redis_client, in_broker=1)
    assert (snap.ready, snap.scheduled, snap.in_broker, snap.in_flight) == (2, 1, 1, 1)
    assert (snap.depth, snap.enqueued) == (3, 5)
    assert snap.accounts["default"].depth == 3


def test_the_send_rate_is_the_mean_of_the_last_ten_whole_seconds(redis_client):
    """Sends in the ten seconds before now count; the current second, still filling, does not."""
    for second in range(int(NOW) - RATE_WINDOW_S, int(NOW) + 1):
        redis_client.hset(KEYS.answers_in_second(second), "OK", 5)
    assert snapshot(redis_client).sends_per_s == 5.0


@pytest.mark.parametrize(
    ("ready", "rate", "drain_s"), [(0, 0.0, 0.0), (10, 0.0, None), (10, 2.0, 5.0)]
)
def test_drain_time_is_the_backlog_over_the_send_rate(ready, rate, drain_s):
    """Nothing due drains at once; a backlog with no sends never drains; else depth / rate."""
    snap = Snapshot("q", ready, 0, 0, 0, 0, rate, {}, {})
    assert snap.drain_s == drain_s


def info(name: str) -> WorkerInfo:
    return WorkerInfo(name, "host", 1, "thread", 4, NOW)


def test_only_recent_heartbeats_count_as_workers(redis_client):
    """A worker beating within ALIVE_S counts; a silent one does not; a stopped one is gone."""
    alive, silent = (
        Heartbeat(redis_client, KEYS, info("a")),
        Heartbeat(redis_client, KEYS, info("b")),
    )
    alive.beat(NOW - 1)
    silent.beat(NOW - ALIVE_S - 1)
    assert snapshot(redis_client).workers == 1
    alive.stop()
    assert snapshot(redis_client).workers == 0


def test_switches_are_shown_per_account_and_a_probe_is_not_an_account(redis_client):
    """A halted account is reported with its halt; the breaker's probe key names no account."""
    redis_client.hset(KEYS.halt("acme"), mapping={"since": NOW, "code": "AUTH_001", "reason": "x"})
    redis_client.hset(KEYS.breaker("billed"), mapping={"since": NOW, "code": "BILL_001"})
    redis_client.set(KEYS.breaker_probe("billed"), "execution")
    accounts = snapshot(redis_client).accounts
    assert set(accounts) == {"default", "acme", "billed"}
    assert accounts["acme"].halt.code == "AUTH_001"
    assert accounts["billed"].breaker is not None
    assert accounts["default"].halt is None


def test_with_several_accounts_depth_and_dead_letters_are_counted_per_account(jobs, redis_client):
    """Due jobs and dead letters split by account; a dead letter that does not parse is skipped."""
    add_job(jobs, "d1", now=NOW)
    add_job(jobs, "a1", now=NOW, account="acme")
    add_job(jobs, "a2", now=NOW, account="acme")
    redis_client.hset(KEYS.halt("acme"), mapping={"since": NOW, "code": "X", "reason": "x"})
    park(redis_client, "p1", "acme")
    redis_client.set(KEYS.dead_letter("broken"), "{not json")
    redis_client.zadd(KEYS.dead_letter_index, {"broken": NOW})
    snap = snapshot(redis_client)
    assert (snap.accounts["acme"].depth, snap.accounts["default"].depth) == (2, 1)
    assert (snap.accounts["acme"].dlq_total, snap.accounts["default"].dlq_total) == (1, 0)
    assert snap.dead_letters == {"MSG_002": 1}


def test_learned_limits_that_are_not_limits_are_not_shown(redis_client):
    """A learned 20/s is shown; a minute limit that is not a positive number is None."""
    redis_client.hset(KEYS.limits("default"), mapping={"sec": "20", "min": "garbage"})
    state = snapshot(redis_client).accounts["default"]
    assert (state.learned_sec, state.learned_min) == (20, None)


def test_held_templates_are_read_per_account_with_their_jobs_and_feed_the_gauge(redis_client):
    """An account with only a held template is reported; each template with its held jobs; the
    gauge counts templates by account and reason, every reason's series there at 0 too."""
    holds = TemplateHolds(redis_client, KEYS)
    record = hold_record(HoldReason.DISABLED, code="WA_132016", by=HeldBy.WHATSAPP, now=NOW)
    holds.hold("brand", "old_offer", "tr", record)
    redis_client.zadd(
        KEYS.template_held_jobs("brand"), {"old_offer|tr:j1": 0, "old_offer|tr:j2": 0}
    )
    state = snapshot(redis_client)
    [held] = state.accounts["brand"].templates_held
    assert (held.name, held.language, held.reason, held.since, held.jobs) == (
        "old_offer",
        "tr",
        "disabled",
        NOW,
        2,
    )
    families = {f.name: f for f in metrics.StateCollector(lambda: state).collect()}
    samples = {
        (s.labels["account"], s.labels["reason"]): s.value
        for s in families["msgworker_template_holds"].samples
    }
    assert samples[("brand", "disabled")] == 1
    assert samples[("brand", "paused")] == samples[("default", "disabled")] == 0
