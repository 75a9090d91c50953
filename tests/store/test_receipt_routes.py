"""Failed deliveries routed by WhatsApp code, against a real Redis: parked with their reason,
rescheduled (the job back to pending without a Gateway call, its send-once entry cleared, sent
again later), or the account's bulk lane paused while the job is parked."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import pytest

from tests.support.jobs import add_job, job_gens, send
from tests.support.receipts import apply_statuses
from worker.send.receipt_rules import failure_terms, receipt_times
from worker.send.routing import ReceiptRule
from worker.settings import Settings
from worker.store.deadletters import DeadLetters
from worker.store.receipts import FailureTerms, ReceiptAction, ReceiptStatus, StatusUpdate
from worker.store.schedule import Pump
from worker.store.states import JobState


@pytest.fixture
def receipts(runtime, redis_url):
    """Applies statuses as the webhook does: one asyncio round trip a request."""
    return partial(apply_statuses, redis_url, runtime.keys)


PARK_UNDELIVERED = FailureTerms()
# The settings' defaults, as serve reads them.
TIMES = receipt_times(Settings(_env_file=None))


def failed(wamid, at, code, action, terms=PARK_UNDELIVERED):
    error = {"code": int(code.removeprefix("WA_")), "title": "failed"}
    return StatusUpdate(
        wamid, ReceiptStatus.FAILED, at, error=error, code=code, action=action, terms=terms
    )


def dead_letters(runtime):
    return DeadLetters(runtime.redis, runtime.keys, retention_s=60)


def history_of_failures(job):
    return [
        (e["code"], e["action"], e["delay_s"])
        for e in job.history
        if e["event"] == "delivery_failed"
    ]


@pytest.mark.parametrize("reason", ["outside_window", "opted_out"])
def test_a_park_rule_parks_with_its_reason_and_a_replay_by_id_sends_it_again(
    runtime, receipts, reason
):
    """131047/131050: parked with the rule's reason, the payload in the dead letter; a replay of
    that id puts it back on the schedule (its send-once entry cleared)."""
    sent_at = send(runtime, add_job(runtime.jobs, "j1"), "wamid.1")
    receipts(failed("wamid.1", sent_at + 1, "WA_131050", ReceiptAction.PARK, FailureTerms(reason)))
    job = runtime.jobs.get("j1")
    assert (job.state, job.parked_reason, job.last_code) == (JobState.PARKED, reason, "WA_131050")
    assert history_of_failures(job) == [("WA_131050", f"park:{reason}", None)]
    record = dead_letters(runtime).get("j1")
    assert (record.reason, record.wamid) == (reason, "wamid.1")
    report = dead_letters(runtime).replay(["j1"], rate_per_s=10)
    assert (report.replayed, report.already_sent) == (1, 0)
    assert runtime.jobs.get("j1").state in {JobState.QUEUED, JobState.SCHEDULED}


def test_a_pair_interval_reschedule_reopens_the_job_without_using_an_attempt(runtime, receipts):
    """131056: the job is pending again, due PAIR_INTERVAL_S after the status came, its message
    kept, its send-once entry cleared, nothing of it expiring, no attempt used; its new
    generation waits in its lane."""
    add_job(runtime.jobs, "j1", priority="high")
    sent_at = send(runtime, "j1", "wamid.1")
    now = sent_at + 1
    terms = failure_terms(ReceiptRule(action="reschedule", delay="pair_interval"), TIMES)
    receipts(failed("wamid.1", sent_at + 1, "WA_131056", ReceiptAction.RESCHEDULE, terms), now=now)
    job = runtime.jobs.get("j1")
    assert (job.state, job.due_at, job.attempts, job.reschedules) == (
        JobState.SCHEDULED,
        pytest.approx(now + 6),
        0,
        1,
    )
    assert job.message  # sent again as it was
    assert job.receipt.status is ReceiptStatus.FAILED
    assert history_of_failures(job) == [("WA_131056", "reschedule", 6)]
    redis, keys = runtime.redis, runtime.keys
    assert redis.get(keys.ledger("default", "j1")) is None
    assert redis.ttl(keys.job("j1")) == -1
    assert redis.ttl(keys.history("j1")) == -1
    assert redis.zscore(keys.due("default", "high"), f"j1|{job.gen}") == pytest.approx(now + 6)


@pytest.mark.parametrize(("interval_s", "slowed"), [(6.0, True), (0.0, False)])
def test_a_pair_interval_reschedule_slows_the_pair_only_with_pacing_on(
    runtime, receipts, interval_s, slowed
):
    """131056 with pacing on: the recipient's pair counts as just answered (its other jobs wait
    the interval too); with pacing off nothing is written to the account's pairs, which no
    begin would ever sweep."""
    add_job(runtime.jobs, "j1")
    sent_at = send(runtime, "j1", "wamid.1")
    rule = ReceiptRule(action="reschedule", delay="pair_interval")
    terms = failure_terms(rule, replace(TIMES, pair_interval_s=interval_s))
    receipts(failed("wamid.1", sent_at + 1, "WA_131056", ReceiptAction.RESCHEDULE, terms))
    recipient = runtime.jobs.get("j1").message["to"]
    pairs = runtime.redis.hgetall(runtime.keys.pairs("default"))
    assert (recipient in pairs) is slowed
    if not slowed:
        assert pairs == {}


def test_a_second_send_of_a_rescheduled_job_is_recorded_once(runtime, receipts):
    """Rescheduled after 131056, the job is sent again as a new wamid: a repeat of the old
    wamid's failure is stale, the new wamid's delivery lands."""
    sent_at = send(runtime, add_job(runtime.jobs, "j1"), "wamid.1")
    terms = FailureTerms(delays_s=(0.0,), limit=100)
    receipts(failed("wamid.1", sent_at + 1, "WA_131056", ReceiptAction.RESCHEDULE, terms))
    assert runtime.jobs.get("j1").state is JobState.QUEUED
    again = send(runtime, "j1", "wamid.2")
    repeat = receipts(failed("wamid.1", again, "WA_131056", ReceiptAction.RESCHEDULE, terms))
    assert repeat.results[0].applied.value == "stale"
    receipts(StatusUpdate("wamid.2", ReceiptStatus.DELIVERED, again + 1))
    job = runtime.jobs.get("j1")
    assert (job.state, job.receipt.status, job.attempts) == (
        JobState.SENT,
        ReceiptStatus.DELIVERED,
        1,
    )


def test_marketing_reschedules_wait_longer_each_time_then_park_at_max_attempts(runtime, receipts):
    """131049 with MAX_ATTEMPTS 3: waits 10 s, then 20 s (each call an attempt), and the third
    is parked retries_exhausted with its code and the wamid it was sent as."""
    times = replace(TIMES, marketing_retry_s=10, max_attempts=3)
    terms = failure_terms(ReceiptRule(action="reschedule", delay="marketing"), times)
    add_job(runtime.jobs, "j1")
    for n, wamid in enumerate(("wamid.1", "wamid.2", "wamid.3")):
        sent_at = send(runtime, "j1", wamid)
        status = failed(wamid, sent_at, "WA_131049", ReceiptAction.RESCHEDULE, terms)
        receipts(status, now=sent_at)
        job = runtime.jobs.get("j1")
        assert job.attempts == n + 1
        if n < 2:
            assert job.due_at == pytest.approx(sent_at + 10 * 2**n)
            runtime.redis.hset(runtime.keys.job("j1"), "due_at", sent_at)  # due now, for send
    assert history_of_failures(job) == [
        ("WA_131049", "reschedule", 10),
        ("WA_131049", "reschedule", 20),
        ("WA_131049", "park:retries_exhausted", None),
    ]
    assert (job.state, job.parked_reason) == (JobState.PARKED, "retries_exhausted")
    assert job.message == {}  # moved into the dead letter
    record = dead_letters(runtime).get("j1")
    assert (record.code, record.wamid, record.attempts) == ("WA_131049", "wamid.3", 3)
    assert dead_letters(runtime).replay(["j1"], rate_per_s=10).replayed == 1


def test_pair_reschedules_are_capped_by_max_reschedules(runtime, receipts):
    """131056 without end: at MAX_RESCHEDULES the job is parked retries_exhausted."""
    terms = FailureTerms(delays_s=(0.0,), limit=2)
    add_job(runtime.jobs, "j1")
    for wamid in ("wamid.1", "wamid.2", "wamid.3"):
        sent_at = send(runtime, "j1", wamid)
        receipts(failed(wamid, sent_at, "WA_131056", ReceiptAction.RESCHEDULE, terms))
    job = runtime.jobs.get("j1")
    assert (job.state, job.parked_reason, job.reschedules) == (
        JobState.PARKED,
        "retries_exhausted",
        2,
    )


def test_pause_bulk_parks_the_job_and_the_pump_skips_only_the_bulk_lane(
    runtime, receipts, redis_client
):
    """131048: the job parked undelivered; until the pause ends the pump takes the account's
    high and normal jobs but none of its bulk ones, and another account's bulk goes on."""
    sent_at = send(runtime, add_job(runtime.jobs, "j1"), "wamid.1")
    now = sent_at + 1
    terms = FailureTerms(pause_s=600)
    receipts(failed("wamid.1", now, "WA_131048", ReceiptAction.PAUSE_BULK, terms), now=now)
    job = runtime.jobs.get("j1")
    assert (job.state, job.parked_reason, job.last_code) == (
        JobState.PARKED,
        "undelivered",
        "WA_131048",
    )
    assert history_of_failures(job) == [("WA_131048", "pause_bulk", None)]
    paused_ms = int(runtime.redis.get(runtime.keys.bulk_paused("default")))
    assert paused_ms == int((now + 600) * 1000)
    assert 590 < runtime.redis.ttl(runtime.keys.bulk_paused("default")) <= 600
    for job_id, account, priority in (
        ("b1", "default", "bulk"),
        ("n1", "default", "normal"),
        ("h1", "default", "high"),
        ("o1", "other", "bulk"),
    ):
        add_job(runtime.jobs, job_id, account=account, priority=priority, now=now)
    dispatched: list[tuple[str, int]] = []
    pump = Pump(runtime.redis, runtime.keys, job_gens(dispatched), lambda: 0, depth_refresh_s=0)
    pump.pump_once(now + 1)
    assert sorted(job_id for job_id, _ in dispatched) == ["h1", "n1", "o1"]
    dispatched.clear()
    pump.pump_once(now + 601)  # the pause over (the others' dispatches are taken again too)
    assert "b1" in {job_id for job_id, _ in dispatched}


def test_a_shorter_pause_leaves_a_longer_one(runtime, receipts):
    """A second 131048 asking for less time than is left does not shorten the pause."""
    for n, pause_s in enumerate((600, 60)):
        job_id = f"j{n}"
        sent_at = send(runtime, add_job(runtime.jobs, job_id), f"wamid.{n}")
        terms = FailureTerms(pause_s=pause_s)
        status = failed(f"wamid.{n}", sent_at, "WA_130429", ReceiptAction.PAUSE_BULK, terms)
        receipts(status, now=1_900_000_000.0 + n)
    assert int(runtime.redis.get(runtime.keys.bulk_paused("default"))) == 1_900_000_600_000
