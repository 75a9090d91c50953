"""End to end: a real redis-server, real `celery worker` processes, the sandbox over HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import redis

from tests.support.cluster import API_KEY, Sandbox, start_worker, worker_env
from tests.support.messages import text
from tests.support.processes import wait_for
from tests.support.secrets import leaked, secrets_in_redis
from worker.errors import InvalidMessage
from worker.sandbox.server import RunningSandbox, SandboxConfig
from worker.store.states import JobState

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sandbox():
    with RunningSandbox(SandboxConfig(api_keys=(API_KEY,))) as running:
        admin = Sandbox(running.url)
        yield admin
        admin.close()


@pytest.fixture(scope="module")
def worker(redis_server, sandbox, tmp_path_factory):
    """One threads-pool worker for the module; state is flushed per test, and before the worker
    starts: what an earlier module left due would otherwise reach this module's sandbox."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    process = start_worker(worker_env(redis_server.url, sandbox.url), log, concurrency=8)
    yield process
    process.stop()


@pytest.fixture
def runtime(runtime, sandbox, worker):
    """The shared runtime, with the module's worker running and the sandbox reset."""
    sandbox.reset()
    sandbox.configure(rate_per_sec=1000, rate_per_min=100_000, latency_ms=0, fault_rate=0)
    return runtime


def settled(runtime, job_id, states=(JobState.SENT, JobState.PARKED), timeout_s=15):
    """Wait until the job reaches one of ``states``; return it."""
    return wait_for(
        lambda: (job := runtime.jobs.get(job_id)) and job.state in states and job,
        timeout_s=timeout_s,
        what=f"job {job_id} to reach {states}",
    )


def test_success_records_the_wamid_and_sends_once(runtime, sandbox):
    """A plain job is sent once; its record holds the wamid the Gateway gave."""
    job_id = runtime.producer.enqueue(text("hello"))
    job = settled(runtime, job_id)
    assert job.state is JobState.SENT
    (accepted,) = sandbox.messages()
    assert job.wamid == accepted["wamid"]
    assert accepted["body"]["to"] == "905321234567"
    assert [e["event"] for e in job.history] == ["enqueued", "attempt"]
    assert job.attempts == 1


@pytest.mark.parametrize(
    "answer",
    [
        {
            "status": 502,
            "raw_body": "<html><h1>502 Bad Gateway</h1></html>",
            "content_type": "text/html",
        },
        {"status": 503, "raw_body": ""},
        {"status": 500, "code": "AUTH_004", "group": "INTERNAL_ERROR"},
        {"status": 500, "code": "AUTH_005", "group": "INTERNAL_ERROR"},
        {"status": 599, "code": "NEW_999", "group": "SOMETHING_NEW"},
        {"drop": True},
    ],
    ids=["html-502", "empty-503", "AUTH_004", "AUTH_005", "unknown-5xx", "dropped"],
)
def test_transient_failures_back_off_then_send(runtime, sandbox, answer):
    """5xx, AUTH_004/005, unknown 5xx and dropped connections back off, never halt, then send."""
    sandbox.script(answer)
    job = settled(runtime, runtime.producer.enqueue(text("transient")))
    assert job.state is JobState.SENT
    first = job.history[1]
    assert first["action"] == "backoff"
    assert 0 <= first["delay_s"] <= 0.1  # the first retry: within [0, base]
    assert runtime.switches.halted("default") is None
    assert sandbox.stats()["accepted"] == 1
    assert job.attempts == 2


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ({"status": 400, "code": "GW_001"}, "GW_001"),
        ({"status": 400, "code": "VAL_123", "group": "VALIDATION"}, "VAL_123"),
        ({"status": 403, "raw_body": "forbidden"}, "HTTP_403"),
        ({"status": 404, "code": "NOPE_1", "group": "ODD"}, "NOPE_1"),
    ],
)
def test_permanent_failures_park_without_retry(runtime, sandbox, answer, code):
    """GW_001, validation, 403 and other 4xx park at once as permanent, no second call."""
    sandbox.script(answer)
    job = settled(runtime, runtime.producer.enqueue(text("permanent")))
    assert job.state is JobState.PARKED
    record = runtime.dead_letters.get(job.id)
    assert (record.code, record.reason, record.attempts) == (code, "permanent", 1)
    assert record.message["to"] == "905321234567"
    assert sandbox.stats()["requests"] == 1
    assert runtime.dead_letters.counts() == {code: 1}


def test_retries_exhausted_parks_with_the_last_code(runtime, sandbox):
    """After MAX_ATTEMPTS (4 here) failed calls the job parks as retries_exhausted."""
    sandbox.script(*[{"status": 502, "raw_body": "bad"}] * 3, {"status": 503, "raw_body": ""})
    job = settled(runtime, runtime.producer.enqueue(text("doomed")))
    record = runtime.dead_letters.get(job.id)
    assert (record.reason, record.code, record.attempts) == ("retries_exhausted", "HTTP_503", 4)
    assert sandbox.stats()["requests"] == 4


@pytest.mark.parametrize("retry_after", ["1s", "1 seconds", 1, "1000ms"])
def test_rate_limited_job_waits_retry_after_and_nobody_calls_meanwhile(
    runtime, sandbox, retry_after
):
    """RATE_001 reschedules by retry_after without using an attempt; no call during the cooldown."""
    sandbox.script(
        {
            "status": 429,
            "code": "RATE_001",
            "group": "TOO_MANY_REQUESTS",
            "params": {"limit_type": "sec", "retry_after": retry_after},
        }
    )
    first = runtime.producer.enqueue(text("first"))
    limited = wait_for(
        lambda: (job := runtime.jobs.get(first)) and len(job.history) > 1 and job.history[1],
        what="the 429",
    )
    others = runtime.producer.enqueue_many([text(i) for i in range(5)])
    jobs = [settled(runtime, job_id) for job_id in [first, *others]]
    assert all(job.state is JobState.SENT for job in jobs)
    assert (limited["code"], limited["action"]) == ("RATE_001", "reschedule")
    assert 1.0 <= limited["delay_s"] <= 1.1
    accepted_at = [m["at"] for m in sandbox.messages()]
    assert min(accepted_at) >= limited["at"] + 1.0 - 0.01  # nobody called during the cooldown
    assert sandbox.stats()["requests"] == 7
    assert jobs[0].attempts == 1  # the 429 did not use an attempt


def test_double_enqueue_of_a_key_sends_once(runtime, sandbox):
    """The same idempotency key twice returns the first job id and sends one message."""
    first = runtime.producer.enqueue(text("otp"), idempotency_key="order-42")
    again = runtime.producer.enqueue(text("otp"), idempotency_key="order-42")
    ids = runtime.producer.enqueue_many([{"message": text("otp"), "idempotency_key": "order-42"}])
    assert first == again == ids[0]
    settled(runtime, first)
    wait_for(lambda: sandbox.stats()["accepted"] == 1)
    time.sleep(0.5)  # a second send, if any, would land within the pump's next rounds
    assert sandbox.stats()["requests"] == 1


def test_expired_job_is_parked_and_never_sent(runtime, sandbox):
    """A job past its expires_at when its turn comes is parked EXPIRED, never sent."""
    runtime.switches.halt("default", reason="hold everything for the test")
    job_id = runtime.producer.enqueue(text("code 1234"), ttl_s=0.5)
    settled(runtime, job_id, states=(JobState.HELD,))
    time.sleep(0.6)  # let the ttl run out while held
    runtime.switches.resume("default")
    job = settled(runtime, job_id)
    assert job.state is JobState.PARKED
    record = runtime.dead_letters.get(job_id)
    assert (record.code, record.reason) == ("EXPIRED", "expired")
    assert sandbox.stats()["requests"] == 0


def test_send_at_in_the_future_waits_in_redis(runtime, sandbox):
    """A job for later is scheduled, not sent, until its time; then it is sent once, on time."""
    when = datetime.now(UTC) + timedelta(seconds=1.5)
    job_id = runtime.producer.enqueue(text("later"), send_at=when)
    assert runtime.jobs.get(job_id).state is JobState.SCHEDULED
    settled(runtime, job_id)
    (accepted,) = sandbox.messages()
    assert when.timestamp() <= accepted["at"] <= when.timestamp() + 1.0


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (text(1, to="not a number"), "message.to"),
        ({"to": "905321234567", "type": "text"}, "message.text"),
        ({"to": "905321234567", "type": "carrier-pigeon"}, "message.type"),
        ({"to": "905321234567", "type": "text", "text": {"body": "x" * 4097}}, "message.text.body"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_enqueued(runtime, message, field):
    """Invalid to, missing body, unknown type, body too long: a clear error, nothing written."""
    with pytest.raises(InvalidMessage) as caught:
        runtime.producer.enqueue_many([text("fine"), message])
    assert f"[1].{field}" in str(caught.value)
    # The module's worker may say it is alive meanwhile (its heartbeat); nothing else is there.
    assert set(runtime.redis.keys()) <= {runtime.keys.workers}


@pytest.mark.parametrize("code", ["AUTH_001", "AUTH_002", "AUTH_003", "WABA_001", "BILL_002"])
def test_halting_codes_hold_the_job_until_resume(runtime, sandbox, code):
    """AUTH_001/2/3, WABA_001 and BILL_002 halt the account; resume sends the job once."""
    status = 400 if code == "BILL_002" else 401
    group = "BAD_REQUEST" if code == "BILL_002" else "UNAUTHORIZED"
    sandbox.script({"status": status, "code": code, "group": group, "description": "fix me"})
    job_id = runtime.producer.enqueue(text("halted"))
    job = settled(runtime, job_id, states=(JobState.HELD,))
    halt = runtime.switches.halted("default")
    assert (halt.code, halt.reason) == (code, "fix me")
    assert job.attempts == 0  # the call that met the halt is not counted
    assert runtime.dead_letters.counts() == {}
    assert runtime.switches.resume("default") == 1
    assert settled(runtime, job_id).state is JobState.SENT
    assert sandbox.stats()["accepted"] == 1


def test_api_key_is_in_no_log_record_or_dead_letter(runtime, sandbox, worker):
    """After failures of every kind, the key is in no worker log line, job or DLQ record."""
    sandbox.script(
        {
            "status": 401,
            "code": "AUTH_001",
            "group": "UNAUTHORIZED",
            "description": f"bad {API_KEY}",
        },
    )
    held = runtime.producer.enqueue(text("secret check"))
    settled(runtime, held, states=(JobState.HELD,))
    runtime.switches.resume("default")
    settled(runtime, held)
    sandbox.script({"status": 400, "code": "GW_001", "params": {"echo": f"Bearer {API_KEY}"}})
    parked = runtime.producer.enqueue(text("secret check 2"))
    settled(runtime, parked)
    assert "***" in runtime.dead_letters.get(parked).params["echo"]
    assert secrets_in_redis(runtime.redis, API_KEY) == []
    assert not leaked(worker.log(), API_KEY)
    assert "905321234567" not in worker.log()


def test_a_lost_answer_is_marked_ambiguous_in_the_history(runtime, sandbox):
    """A connection dropped after the request went out shows as 'ambiguous' before the retry."""
    sandbox.script({"drop": True})
    job = settled(runtime, runtime.producer.enqueue(text("maybe sent")))
    assert [e["event"] for e in job.history] == ["enqueued", "ambiguous", "attempt"]
    assert job.history[1]["code"] == "CONNECTION"
