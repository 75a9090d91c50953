"""Every verdict of begin and of recheck, and every transition, once each against a real Redis:
what the script answers and what it leaves behind."""

from __future__ import annotations

import time

import pytest

from tests.support.jobs import KEYS, add_job
from worker.outcome import Outcome
from worker.store.claims import Execution, Verdict
from worker.store.jobs import JobStore
from worker.store.ratelimit import RateLimit
from worker.store.states import JobState

RATE = RateLimit(per_sec=1000, per_min=100_000)
MINE = Execution("j1", 1, "mine")


@pytest.fixture
def jobs(redis_client):
    store = JobStore(redis_client, KEYS)
    add_job(store, "j1", key="k1")
    return store


def begin(transitions, execution=MINE, *, rate=RATE, now=None):
    now = time.time() if now is None else now
    return transitions.begin(execution, now=now, lease_s=30, probe_interval_s=30, rate=rate)


def recheck(transitions, jobs, execution=MINE):
    job = jobs.get(execution.job_id)
    return transitions.recheck(execution, job, now=time.time(), probe_interval_s=30)


def open_breaker(redis_client, *, half_open=False, probe_by="another"):
    redis_client.hset(KEYS.breaker("default"), mapping={"since": time.time(), "code": "BILL_001"})
    if half_open:
        redis_client.hset(KEYS.breaker("default"), "half_open", "1")
    if probe_by:
        redis_client.set(KEYS.breaker_probe("default"), probe_by)


def test_begin_go_claims_the_job_and_counts_its_call(jobs, transitions, redis_client):
    """go: the job is sending, its attempt counted, its key claimed by this execution."""
    claim = begin(transitions)
    assert (claim.verdict, claim.detail) == (Verdict.GO, "0")
    assert claim.job.attempts == 0  # as read before this call was counted
    assert jobs.get("j1").state is JobState.SENDING
    assert jobs.get("j1").attempts == 1
    assert redis_client.get(KEYS.claim("default", "k1")) == "mine"


def test_begin_busy_while_another_execution_holds_the_key(jobs, transitions):
    """busy: a live execution holds the job; nothing of it is read."""
    begin(transitions)
    claim = begin(transitions, Execution("j1", 1, "other"))
    assert (claim.verdict, claim.job) == (Verdict.BUSY, None)


def test_begin_stale_for_another_generation(jobs, transitions, redis_client):
    """stale: a dispatch of a generation the job has left is dropped, and its lease with it."""
    redis_client.zadd(KEYS.leases, {"j1|7": time.time()})
    claim = begin(transitions, Execution("j1", 7, "mine"))
    assert claim.verdict is Verdict.STALE
    assert redis_client.zscore(KEYS.leases, "j1|7") is None


def test_begin_duplicate_when_the_key_was_sent(jobs, transitions, redis_client):
    """duplicate: the ledger has the key's wamid; the job is marked sent without a call."""
    redis_client.set(KEYS.ledger("default", "k1"), "wamid.first")
    claim = begin(transitions)
    assert (claim.verdict, claim.detail) == (Verdict.DUPLICATE, "wamid.first")
    assert jobs.get("j1").state is JobState.SENT


def test_begin_lost_when_an_execution_died_in_its_call(jobs, transitions, redis_client):
    """lost: the job is calling but nobody holds it (the claim ran out): outcome unknown."""
    begin(transitions)
    redis_client.delete(KEYS.claim("default", "k1"))
    claim = begin(transitions, Execution("j1", 1, "next"))
    assert claim.verdict is Verdict.LOST
    assert redis_client.get(KEYS.claim("default", "k1")) == "next"


def test_begin_expired_past_the_jobs_expiry(redis_client, transitions):
    """expired: past expires_at, the job is claimed to be parked, no call counted."""
    store = JobStore(redis_client, KEYS)
    add_job(store, "j1", key="k1", expires_in=1, now=time.time() - 10)
    claim = begin(transitions)
    assert claim.verdict is Verdict.EXPIRED
    assert store.get("j1").attempts == 0


def test_begin_held_behind_a_halt(jobs, transitions, redis_client):
    """held: the account is halted; the job moves to its hold list with a new generation."""
    redis_client.hset(KEYS.halt("default"), mapping={"code": "AUTH_001", "since": time.time()})
    assert begin(transitions).verdict is Verdict.HELD
    job = jobs.get("j1")
    assert (job.state, job.gen) == (JobState.HELD, 2)
    assert redis_client.lrange(KEYS.held("default"), 0, -1) == ["j1"]


def test_begin_deferred_when_the_slot_is_further_than_the_longest_wait(jobs, transitions):
    """deferred: the wait is spent on the schedule, no attempt used."""
    slow = RateLimit(per_sec=1, per_min=100_000, max_wait_s=0)
    now = time.time()
    add_job(jobs, "j0", key="k0", now=now)
    assert begin(transitions, Execution("j0", 1, "first"), rate=slow, now=now).verdict is Verdict.GO
    claim = begin(transitions, rate=slow, now=now)
    assert claim.verdict is Verdict.DEFERRED
    assert claim.wait_s > 0
    job = jobs.get("j1")
    assert (job.state, job.attempts, job.gen) == (JobState.SCHEDULED, 0, 2)


@pytest.mark.parametrize(("half_open", "verdict"), [(False, Verdict.BREAKER), (True, Verdict.WAIT)])
def test_begin_with_the_breaker_open_and_its_probe_out(
    jobs, transitions, redis_client, half_open, verdict
):
    """breaker (park without calling) or, half-open, wait; the job stays claimed."""
    open_breaker(redis_client, half_open=half_open)
    assert begin(transitions).verdict is verdict
    assert redis_client.get(KEYS.claim("default", "k1")) == "mine"


def test_begin_with_the_breaker_open_and_no_probe_out_goes_as_the_probe(
    jobs, transitions, redis_client
):
    """go, detail '1': this call is the breaker's probe."""
    open_breaker(redis_client, probe_by=None)
    claim = begin(transitions)
    assert (claim.verdict, claim.detail) == (Verdict.GO, "1")
    assert redis_client.get(KEYS.breaker_probe("default")) == "mine"


def test_recheck_go_when_nothing_changed(jobs, transitions):
    begin(transitions)
    assert recheck(transitions, jobs).verdict is Verdict.GO


def test_recheck_stale_when_the_claim_is_anothers(jobs, transitions, redis_client):
    begin(transitions)
    redis_client.set(KEYS.claim("default", "k1"), "other")
    assert recheck(transitions, jobs).verdict is Verdict.STALE


def test_recheck_held_gives_the_attempt_back(jobs, transitions, redis_client):
    """held: a halt came during the wait; no attempt used, the claim released."""
    begin(transitions)
    redis_client.hset(KEYS.halt("default"), mapping={"code": "AUTH_001", "since": time.time()})
    assert recheck(transitions, jobs).verdict is Verdict.HELD
    job = jobs.get("j1")
    assert (job.state, job.attempts) == (JobState.HELD, 0)
    assert redis_client.get(KEYS.claim("default", "k1")) is None


def test_recheck_deferred_until_a_new_cooldown_ends(jobs, transitions, redis_client):
    begin(transitions)
    redis_client.set(KEYS.cooldown("default"), int((time.time() + 5) * 1000))
    claim = recheck(transitions, jobs)
    assert claim.verdict is Verdict.DEFERRED
    assert 4 < claim.wait_s <= 5
    assert jobs.get("j1").state is JobState.SCHEDULED


@pytest.mark.parametrize(("half_open", "verdict"), [(False, Verdict.BREAKER), (True, Verdict.WAIT)])
def test_recheck_with_a_breaker_opened_and_its_probe_out(
    jobs, transitions, redis_client, half_open, verdict
):
    begin(transitions)
    open_breaker(redis_client, half_open=half_open)
    assert recheck(transitions, jobs).verdict is verdict
    assert jobs.get("j1").attempts == 0


def test_recheck_with_a_breaker_opened_and_no_probe_out_goes_as_the_probe(
    jobs, transitions, redis_client
):
    begin(transitions)
    open_breaker(redis_client, probe_by=None)
    assert recheck(transitions, jobs).verdict is Verdict.GO
    assert redis_client.get(KEYS.breaker_probe("default")) == "mine"


def test_sent_records_the_wamid_and_the_ledger(jobs, transitions, redis_client):
    begin(transitions)
    record = transitions.mark_sent(MINE, "wamid.1", now=time.time())
    assert (record.breaker_closed, record.exhausted_open, record.next) == (False, False, None)
    assert jobs.get("j1").state is JobState.SENT
    assert redis_client.get(KEYS.ledger("default", "k1")) == "wamid.1"


def test_retry_schedules_a_new_generation(jobs, transitions):
    begin(transitions)
    outcome = Outcome(code="HTTP_502", status=502)
    assert transitions.retry(MINE, now=time.time(), delay_s=5, action="backoff", outcome=outcome)
    job = jobs.get("j1")
    assert (job.state, job.gen, job.last_code) == (JobState.SCHEDULED, 2, "HTTP_502")


def test_park_writes_the_dead_letter(jobs, transitions, redis_client):
    begin(transitions)
    applied, opened = transitions.park(
        MINE, now=time.time(), code="PARAM_001", reason="permanent", record={"id": "j1"}
    )
    assert (applied, opened) == (True, False)
    assert jobs.get("j1").state is JobState.PARKED
    assert redis_client.get(KEYS.dead_letter("j1")) == '{"id":"j1"}'
    assert redis_client.hget(KEYS.dead_letter_counts, "PARAM_001") == "1"


def test_hold_halts_the_account(jobs, transitions, redis_client):
    begin(transitions)
    applied, halt_set = transitions.hold(MINE, now=time.time(), code="AUTH_001", reason="bad key")
    assert (applied, halt_set) == (True, True)
    assert jobs.get("j1").state is JobState.HELD
    assert redis_client.hget(KEYS.halt("default"), "code") == "AUTH_001"


def test_hand_back_ends_the_leases_now(jobs, transitions, redis_client):
    """Only leases still held are touched: a settled job's stays gone."""
    redis_client.zadd(KEYS.leases, {"j1|1": time.time() + 30})
    transitions.hand_back([MINE, Execution("gone", 1, "x")], now=123.0)
    assert redis_client.zrange(KEYS.leases, 0, -1, withscores=True) == [("j1|1", 123.0)]
