"""Lifetimes: nothing pending or parked expires; sent jobs age out after the retention."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.cluster import Sandbox, start_worker, worker_env
from tests.support.messages import text
from tests.support.processes import wait_for
from worker.store.claims import Execution
from worker.store.deadletters import DeadLetters, Selection
from worker.store.jobs import JobStore
from worker.store.keys import Keys
from worker.store.ratelimit import RateLimit
from worker.store.records import NewJob
from worker.store.restore import Restore
from worker.store.states import JobState
from worker.store.transitions import Transitions

RETENTION_S = 2.0
KEYS = Keys("r:")
BODY = {"to": "905321234567", "type": "text", "text": {"body": "hi"}}
RATE = RateLimit(per_sec=1000, per_min=100_000)


@pytest.fixture
def store_keys():
    return KEYS


def job_keys(keys: Keys, job_id: str, account: str = "default", key: str | None = None):
    key = key or job_id
    return [keys.job(job_id), keys.history(job_id), keys.idempotency(account, key)]


def assert_no_expiry(client, keys: Keys, job_id: str) -> None:
    for name in job_keys(keys, job_id):
        assert client.pttl(name) == -1, name  # present, and no expiry


def outlive_the_retention(since: float) -> None:
    """Waiting out the retention is the point of these tests: only time passing will do."""
    time.sleep(max(0.0, since + RETENTION_S + 0.5 - time.time()))


# --- The store, below any worker -------------------------------------------------------------


@pytest.fixture
def transitions(redis_client):
    return Transitions(redis_client, KEYS, retention_s=RETENTION_S)


def add(jobs: JobStore, job_id: str, *, due_in: float = 0.0) -> None:
    now = time.time()
    jobs.add(
        [NewJob(id=job_id, account="default", key=job_id, message=BODY, due_at=now + due_in)],
        now=now,
    )


def test_an_enqueued_job_has_no_expiry(jobs, redis_client):
    """Record, history and idempotency entry of a pending job carry no TTL."""
    add(jobs, "now")
    add(jobs, "later", due_in=30 * 86400)
    assert_no_expiry(redis_client, KEYS, "now")
    assert_no_expiry(redis_client, KEYS, "later")


def test_a_sent_job_expires_after_the_retention_from_the_moment_it_was_sent(
    jobs, redis_client, transitions
):
    """mark_sent gives record, history, idempotency and ledger entries the retention as TTL."""
    add(jobs, "j")
    claim = transitions.begin(
        Execution("j", 1, "x"), now=time.time(), lease_s=5, probe_interval_s=5, rate=RATE
    )
    assert claim.verdict == "go"
    transitions.mark_sent(Execution("j", 1, "x"), "wamid.1", now=time.time())
    for name in [*job_keys(KEYS, "j"), KEYS.ledger("default", "j")]:
        assert 0 < redis_client.pttl(name) <= RETENTION_S * 1000, name


def park(jobs: JobStore, transitions: Transitions, job_id: str, *, at: float | None = None) -> None:
    add(jobs, job_id)
    execution = Execution(job_id, 1, "x")
    now = time.time() if at is None else at
    transitions.begin(execution, now=now, lease_s=5, probe_interval_s=5, rate=RATE)
    record = {
        "id": job_id,
        "idempotency_key": job_id,
        "account": "default",
        "message": BODY,
        "code": "GW_001",
        "reason": "permanent",
        "enqueued_at": now,
        "parked_at": now,
    }
    assert transitions.park(execution, now=now, code="GW_001", reason="permanent", record=record)[0]


def test_a_purged_dead_letter_s_job_ages_out_after_the_retention(jobs, redis_client, transitions):
    """Purging settles the job: its record and idempotency entry get the retention as TTL."""
    park(jobs, transitions, "p")
    assert_no_expiry(redis_client, KEYS, "p")  # parked: waits as long as it takes
    dead = DeadLetters(redis_client, KEYS, retention_s=RETENTION_S)
    assert dead.purge(["p"]) == 1
    for name in job_keys(KEYS, "p"):
        assert 0 < redis_client.pttl(name) <= RETENTION_S * 1000, name
    assert dead.counts() == {}


def send(transitions: Transitions, job_id: str, gen: int) -> None:
    execution = Execution(job_id, gen, "x")
    claim = transitions.begin(execution, now=time.time(), lease_s=5, probe_interval_s=5, rate=RATE)
    assert claim.verdict == "go"
    transitions.mark_sent(execution, f"wamid.{job_id}", now=time.time())


def test_a_job_sent_after_its_key_went_to_another_job_leaves_that_jobs_entry_alone(
    jobs, redis_client, transitions
):
    """A purged job's idempotency entry aged out and a new job took the key; the old job's dead
    letter, imported again and replayed, is sent and ages out without giving the new job's entry
    an expiry (that job is pending)."""
    park(jobs, transitions, "p")
    dead = DeadLetters(redis_client, KEYS, retention_s=RETENTION_S)
    exported = dead.get("p")
    assert dead.purge(["p"]) == 1
    redis_client.delete(KEYS.idempotency("default", "p"))  # aged out before the record
    now = time.time()
    jobs.add([NewJob(id="q", account="default", key="p", message=BODY, due_at=now)], now=now)
    assert Restore(redis_client, KEYS).put_back([exported]).imported == 1
    assert dead.replay(["p"], rate_per_s=100).replayed == 1
    send(transitions, "p", jobs.get("p").gen)
    assert redis_client.get(KEYS.idempotency("default", "p")) == "q"
    assert redis_client.pttl(KEYS.idempotency("default", "p")) == -1
    assert 0 < redis_client.pttl(KEYS.job("p")) <= RETENTION_S * 1000


def test_a_job_written_before_it_recorded_its_keys_ownership_still_ages_its_entry_out(
    jobs, redis_client, transitions
):
    """A record from an older version has no key_owned field: the entry is read, and aged out
    when it names the job."""
    add(jobs, "old")
    redis_client.hdel(KEYS.job("old"), "key_owned")
    send(transitions, "old", 1)
    assert 0 < redis_client.pttl(KEYS.idempotency("default", "old")) <= RETENTION_S * 1000


def test_dead_letters_older_than_the_dlq_retention_go_with_their_jobs(
    jobs, redis_client, transitions
):
    """With a DLQ retention, old dead letters are removed (record, index, count, job); others stay."""
    now = time.time()
    park(jobs, transitions, "old", at=now - 100)
    park(jobs, transitions, "young", at=now - 10)
    dead = DeadLetters(redis_client, KEYS, retention_s=RETENTION_S, max_age_s=50)
    assert dead.remove_old(now=now) == 1
    assert dead.counts() == {"GW_001": 1}
    assert [r.id for r in dead.select(Selection())] == ["young"]
    assert jobs.get("old") is None
    for name in job_keys(KEYS, "old"):
        assert not redis_client.exists(name), name
    assert jobs.get("young").state is JobState.PARKED
    assert DeadLetters(redis_client, KEYS, retention_s=RETENTION_S).remove_old(now=now + 1e6) == 0


# --- End to end: a worker with a short retention ----------------------------------------------


@pytest.fixture
def settings(settings, sandbox):
    """The shared settings, with the short retention."""
    return settings.model_copy(update={"retention_s": RETENTION_S})


@pytest.fixture
def worker(redis_url, sandbox, tmp_path, workers):
    env = worker_env(redis_url, sandbox.url, retention_s=str(RETENTION_S))
    return workers(env, tmp_path / "worker.log", concurrency=4)


def sent_once(sandbox: Sandbox, body: str) -> bool:
    return sandbox.bodies().get(body, 0) == 1


@pytest.mark.e2e
def test_a_job_due_after_the_retention_is_kept_and_sent_once(runtime, sandbox, worker):
    """send_at beyond the retention: the record outlives it, and the job goes out once, on time."""
    enqueued = time.time()
    when = datetime.now(UTC) + timedelta(seconds=2.5 * RETENTION_S)
    job_id = runtime.producer.enqueue(text("later"), send_at=when)
    assert_no_expiry(runtime.redis, runtime.keys, job_id)
    outlive_the_retention(enqueued)
    assert runtime.jobs.get(job_id).state in {JobState.SCHEDULED, JobState.QUEUED}
    wait_for(lambda: sent_once(sandbox, "message later"), timeout_s=20, what="the send")
    assert time.time() >= when.timestamp()
    wait_for(lambda: runtime.jobs.get(job_id).state is JobState.SENT, what="sent recorded")
    assert sandbox.bodies()["message later"] == 1


@pytest.mark.e2e
def test_a_job_held_longer_than_the_retention_is_sent_once_after_resume(runtime, sandbox, worker):
    """Held behind a halt past the retention: still there, and resume sends it once."""
    runtime.switches.halt("default", reason="maintenance")
    job_id = runtime.producer.enqueue(text("held"))
    wait_for(lambda: runtime.jobs.get(job_id).state is JobState.HELD, what="the hold")
    held_at = time.time()
    outlive_the_retention(held_at)
    assert_no_expiry(runtime.redis, runtime.keys, job_id)
    assert runtime.switches.resume("default") == 1
    wait_for(lambda: sent_once(sandbox, "message held"), timeout_s=20, what="the send")
    assert sandbox.stats()["accepted"] == 1


@pytest.mark.e2e
def test_a_dead_letter_older_than_the_retention_is_replayed_and_sent_once(runtime, sandbox, worker):
    """Parked past the retention: record and dead letter are kept; a replay sends it once."""
    sandbox.script({"status": 400, "code": "GW_001"})
    job_id = runtime.producer.enqueue(text("parked"))
    wait_for(lambda: runtime.jobs.get(job_id).state is JobState.PARKED, what="the park")
    outlive_the_retention(time.time())
    assert_no_expiry(runtime.redis, runtime.keys, job_id)
    assert runtime.redis.pttl(runtime.keys.dead_letter(job_id)) == -1
    assert runtime.dead_letters.replay([job_id], rate_per_s=10).replayed == 1
    assert_no_expiry(runtime.redis, runtime.keys, job_id)
    wait_for(lambda: sent_once(sandbox, "message parked"), timeout_s=20, what="the send")
    wait_for(lambda: runtime.jobs.get(job_id).state is JobState.SENT, what="sent recorded")
    assert sandbox.bodies()["message parked"] == 1


@pytest.mark.e2e
def test_a_sent_job_is_gone_after_the_retention(runtime, sandbox, worker):
    """After sending, record, history, idempotency and ledger entries expire with the retention."""
    job_id = runtime.producer.enqueue(text("sent"), idempotency_key="k-sent")
    wait_for(lambda: runtime.jobs.get(job_id).state is JobState.SENT, what="the send")
    names = [
        runtime.keys.job(job_id),
        runtime.keys.history(job_id),
        runtime.keys.idempotency("default", "k-sent"),
        runtime.keys.ledger("default", "k-sent"),
    ]
    wait_for(
        lambda: runtime.redis.exists(*names) == 0,
        timeout_s=RETENTION_S + 5,
        interval_s=0.1,
        what="the settled keys to expire",
    )
    assert runtime.jobs.get(job_id) is None


@pytest.mark.e2e
def test_a_worker_removes_dead_letters_older_than_the_dlq_retention(
    redis_url, runtime, sandbox, tmp_path
):
    """DLQ_RETENTION_S set: a dead letter goes with its job once older than it; counts agree."""
    env = worker_env(redis_url, sandbox.url, retention_s=str(RETENTION_S), dlq_retention_s="1")
    worker = start_worker(env, tmp_path / "dlq.log", concurrency=2)
    try:
        sandbox.script({"status": 400, "code": "GW_001"})
        job_id = runtime.producer.enqueue(text("forgotten"))
        wait_for(lambda: runtime.dead_letters.get(job_id), what="the dead letter")
        wait_for(
            lambda: runtime.dead_letters.get(job_id) is None and runtime.jobs.get(job_id) is None,
            timeout_s=10,
            what="the old dead letter removed",
        )
        assert runtime.dead_letters.counts() == {}
        assert runtime.redis.zcard(runtime.keys.dead_letter_index) == 0
    finally:
        worker.stop()
