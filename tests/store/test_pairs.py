"""Pair pacing against a real Redis: a call to a recipient counts against its pair from its begin,
stays counted from the Gateway's 200 on, and stops counting when the Gateway refused or failed
it, or it was never made."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.jobs import KEYS
from tests.support.messages import PHONE, text
from tests.support.receipts import apply_statuses
from worker.outcome import Outcome
from worker.store.claims import PAIR_WAIT, Claim, Execution, Verdict
from worker.store.protocol import RECHECK
from worker.store.ratelimit import RateLimit
from worker.store.receipts import ReceiptStatus, StatusUpdate
from worker.store.records import NewJob
from worker.store.scripts import LUA
from worker.store.states import JobState

INTERVAL_S = 6.0
PACED = RateLimit(per_sec=1000, per_min=100_000, pair_interval_s=INTERVAL_S)
OTHER = "905329876543"
T0 = 1_800_000_000.0  # the scripts take the time they are given


def add(jobs, job_id: str, to: str = PHONE, *, now: float = T0) -> None:
    jobs.add([NewJob(job_id, "default", job_id, text(job_id, to), due_at=now)], now=now)


def begin(transitions, job_id: str, *, now: float, rate: RateLimit = PACED, gen: int = 1) -> Claim:
    execution = Execution(job_id, gen, holder=f"{job_id}-{gen}")
    return transitions.begin(execution, now=now, lease_s=30, probe_interval_s=30, rate=rate)


def sent(transitions, job_id: str, *, now: float) -> None:
    transitions.mark_sent(Execution(job_id, 1, f"{job_id}-1"), f"wamid.{job_id}", now=now)


def slots_taken(redis_client) -> int:
    return int(redis_client.zcard(KEYS.window("default", "sec")))


def test_a_second_job_to_a_recipient_with_a_call_under_way_waits_on_the_schedule(
    jobs, redis_client, transitions
):
    """Begun together, the second job to one number goes back on the schedule (no attempt, no
    rate-limit slot) for the interval; a job to another number goes at once."""
    for job_id in ("first", "second"):
        add(jobs, job_id)
    add(jobs, "elsewhere", OTHER)
    assert begin(transitions, "first", now=T0).verdict is Verdict.GO
    waiting = begin(transitions, "second", now=T0)
    assert (waiting.verdict, waiting.detail) == (Verdict.DEFERRED, PAIR_WAIT)
    assert waiting.pair_wait
    assert waiting.wait_s == pytest.approx(INTERVAL_S)
    assert slots_taken(redis_client) == 1
    job = jobs.get("second")
    assert (job.state, job.gen, job.attempts) == (JobState.SCHEDULED, 2, 0)
    assert job.due_at == pytest.approx(T0 + INTERVAL_S)
    assert job.history[-1]["action"] == "pair_wait"
    assert begin(transitions, "elsewhere", now=T0).verdict is Verdict.GO


def test_an_accepted_call_counts_for_the_interval_after_its_answer(jobs, transitions):
    """The pair frees PAIR_INTERVAL_S after the Gateway's 200, not after the call's begin."""
    for job_id in ("first", "second"):
        add(jobs, job_id)
    begin(transitions, "first", now=T0)
    sent(transitions, "first", now=T0 + 0.5)
    early = begin(transitions, "second", now=T0 + INTERVAL_S)
    assert early.pair_wait
    assert early.wait_s == pytest.approx(0.5)
    assert begin(transitions, "second", now=T0 + INTERVAL_S + 0.5, gen=2).verdict is Verdict.GO


def refuse(transitions, execution: Execution, now: float) -> None:
    outcome = Outcome(code="HTTP_502", status=502)
    transitions.retry(execution, now=now, delay_s=1, action="backoff", outcome=outcome)


def park(transitions, execution: Execution, now: float) -> None:
    transitions.park(execution, now=now, code="GW_001", reason="permanent", record={})


def halt(transitions, execution: Execution, now: float) -> None:
    transitions.hold(execution, now=now, code="AUTH_001", reason="key revoked")


def not_called(transitions, execution: Execution, now: float) -> None:
    transitions.retry(execution, now=now, delay_s=1, action="replicas_wait")


def rate_limited(transitions, execution: Execution, now: float) -> None:
    outcome = Outcome(code="RATE_001", status=429)
    transitions.retry(execution, now=now, delay_s=1, action="reschedule", outcome=outcome)


@pytest.mark.parametrize("settle", [refuse, park, halt, not_called, rate_limited])
def test_a_call_not_accepted_gives_its_pair_back(jobs, redis_client, transitions, settle):
    """A refused or failed call, or one never made, does not count: the next job to the same
    number goes at once."""
    for job_id in ("first", "second"):
        add(jobs, job_id)
    begin(transitions, "first", now=T0)
    settle(transitions, Execution("first", 1, "first-1"), T0 + 0.2)
    assert redis_client.hget(KEYS.pairs("default"), PHONE) is None
    redis_client.delete(KEYS.halt("default"), KEYS.cooldown("default"))  # what the call set
    assert begin(transitions, "second", now=T0 + 0.3).verdict is Verdict.GO


def test_a_recheck_that_stops_the_call_gives_its_pair_back(jobs, redis_client, transitions):
    """A halt found after the wait for the slot holds the job and frees its pair."""
    for job_id in ("first", "second"):
        add(jobs, job_id)
    begin(transitions, "first", now=T0)
    redis_client.hset(KEYS.halt("default"), mapping={"code": "AUTH_001", "since": T0})
    again = transitions.recheck(
        Execution("first", 1, "first-1"), jobs.get("first"), now=T0 + 0.1, probe_interval_s=30
    )
    assert again.verdict is Verdict.HELD
    redis_client.delete(KEYS.halt("default"))
    assert begin(transitions, "second", now=T0 + 0.2).verdict is Verdict.GO
    assert "pairs" in RECHECK.keys


def test_a_burst_lets_that_many_calls_through_in_an_interval(jobs, transitions):
    """PAIR_BURST 2: two calls to one number in an interval, the third waits for the first's
    interval to end."""
    burst = RateLimit(per_sec=1000, per_min=100_000, pair_interval_s=INTERVAL_S, pair_burst=2)
    for job_id in ("a", "b", "c"):
        add(jobs, job_id)
    for at, job_id in ((T0, "a"), (T0 + 1, "b")):
        assert begin(transitions, job_id, now=at, rate=burst).verdict is Verdict.GO
        sent(transitions, job_id, now=at + 0.1)
    third = begin(transitions, "c", now=T0 + 2, rate=burst)
    assert third.pair_wait
    assert third.wait_s == pytest.approx(INTERVAL_S + 0.1 - 2)


def test_pacing_off_writes_no_pairs(jobs, redis_client, transitions):
    """An interval of 0 turns pacing off: every job to one number goes, and no pair is kept."""
    off = RateLimit(per_sec=1000, per_min=100_000, pair_interval_s=0)
    for job_id in ("a", "b", "c"):
        add(jobs, job_id)
        assert begin(transitions, job_id, now=T0, rate=off).verdict is Verdict.GO
        sent(transitions, job_id, now=T0 + 0.1)
    assert not redis_client.exists(KEYS.pairs("default"))


def test_a_job_written_before_its_recipient_field_is_paced_by_its_message(
    jobs, redis_client, transitions
):
    """A job enqueued by an older version has no field ``to``: its message names the pair."""
    for job_id in ("old", "new"):
        add(jobs, job_id)
    redis_client.hdel(KEYS.job("old"), "to")
    assert begin(transitions, "old", now=T0).verdict is Verdict.GO
    assert begin(transitions, "new", now=T0).pair_wait


def test_a_call_never_answered_stops_counting_after_its_lease(jobs, redis_client, transitions):
    """A worker that died in its call holds the pair for the claim's lease at most."""
    for job_id in ("dead", "next"):
        add(jobs, job_id)
    begin(transitions, "dead", now=T0)
    assert begin(transitions, "next", now=T0 + 29).pair_wait
    assert begin(transitions, "next", now=T0 + 31, gen=2).verdict is Verdict.GO


def test_a_send_settled_after_its_claim_ran_out_leaves_a_later_reservation(
    jobs, redis_client, transitions
):
    """A settlement sent again late (a client's retry through a failover), its claim gone and
    another job's call reserved meanwhile: its confirmation reads the pair and leaves that
    reservation, so a third job still waits for it."""
    for job_id in ("late", "next", "third"):
        add(jobs, job_id)
    begin(transitions, "late", now=T0)
    redis_client.delete(KEYS.claim("default", "late"))  # its lease ran out
    assert begin(transitions, "next", now=T0 + 31).verdict is Verdict.GO
    sent(transitions, "late", now=T0 + 1)  # the time it was first sent with
    assert begin(transitions, "third", now=T0 + 32).pair_wait


def test_a_call_begun_unpaced_drops_an_earlier_calls_pair(jobs, redis_client, transitions):
    """A job once paced, given back, then begun with pacing off: its send leaves the pairs as
    they were (the earlier call's field would have it confirm a pair it never reserved)."""
    add(jobs, "a")
    begin(transitions, "a", now=T0)
    refuse(transitions, Execution("a", 1, "a-1"), T0 + 0.1)
    off = RateLimit(per_sec=1000, per_min=100_000, pair_interval_s=0)
    assert begin(transitions, "a", now=T0 + 1.2, rate=off, gen=2).verdict is Verdict.GO
    assert redis_client.hget(KEYS.job("a"), "pair") is None
    transitions.mark_sent(Execution("a", 2, "a-2"), "wamid.a", now=T0 + 1.3)
    assert redis_client.hget(KEYS.pairs("default"), PHONE) is None


@pytest.mark.parametrize(("swept_ago_s", "left"), [(11, 1), (9, 2001)])
def test_the_pairs_hash_expires_and_forgets_idle_pairs(
    jobs, redis_client, transitions, swept_ago_s, left
):
    """The hash expires once no call can count; every 10 s its idle pairs are forgotten."""
    pairs = KEYS.pairs("default")
    now_ms = int(T0 * 1000)
    idle = {f"9053{n:08d}": str(now_ms - 60_000) for n in range(2000)}
    swept = str(now_ms - swept_ago_s * 1000)
    redis_client.hset(pairs, mapping={**idle, "kept": str(now_ms - 5000), "swept": swept})
    add(jobs, "a")
    begin(transitions, "a", now=T0)
    recipients = [field for field in redis_client.hkeys(pairs) if field.isdigit()]
    assert len(recipients) == left
    assert PHONE in recipients
    assert 0 < redis_client.pttl(pairs) <= (30 + 1 + INTERVAL_S + 1 + 1) * 1000


def test_a_pair_slowed_counts_as_just_accepted(jobs, redis_client, transitions):
    """pair_accepted (for a 131056 receipt) makes the pair wait a whole interval from then,
    and the hash lasts that long at least."""
    source = LUA.joinpath("lib", "pairs.lua").read_text(encoding="utf-8")
    slow = redis_client.register_script(
        source + "\npair_accepted(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))"
    )
    slow(keys=[KEYS.pairs("default")], args=[PHONE, int((T0 + 1) * 1000), 6000])
    assert 5000 < redis_client.pttl(KEYS.pairs("default")) <= 6000
    add(jobs, "a")
    waiting = begin(transitions, "a", now=T0 + 2)
    assert waiting.wait_s == pytest.approx(INTERVAL_S - 1)


def test_the_recipient_is_written_with_the_job(jobs, redis_client):
    """enqueue stores the message's recipient as the job's field ``to``."""
    add(jobs, "a", OTHER, now=time.time())
    assert redis_client.hget(KEYS.job("a"), "to") == OTHER
    assert json.loads(redis_client.hget(KEYS.job("a"), "message"))["to"] == OTHER


def test_the_recipient_goes_with_the_message_once_read(jobs, redis_client, transitions, redis_url):
    """A read receipt drops the message and the job's recipient fields with it."""
    add(jobs, "a", now=time.time())
    begin(transitions, "a", now=time.time())
    sent(transitions, "a", now=time.time())
    read = StatusUpdate("wamid.a", ReceiptStatus.READ, time.time())
    apply_statuses(redis_url, KEYS, read)
    assert redis_client.hmget(KEYS.job("a"), "message", "to", "pair") == [None, None, None]
