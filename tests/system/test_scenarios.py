"""Incidents end to end: halt across workers, a billing episode, crashes, long delays, prefork."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.cluster import API_KEY, run_msgworker, start_worker, worker_env
from tests.support.messages import text
from tests.support.processes import wait_for
from tests.support.receiver import Receiver
from tests.support.switches import IN_FLIGHT_S, Recorded
from worker.sandbox.server import SandboxConfig
from worker.send.routing import default_routing_path
from worker.store.states import JobState

pytestmark = pytest.mark.e2e


@pytest.fixture
def sandbox(sandbox):
    """The shared sandbox at its own, realistic rate limits: the scenarios meet them."""
    defaults = SandboxConfig()
    sandbox.configure(rate_per_sec=defaults.rate_per_sec, rate_per_min=defaults.rate_per_min)
    return sandbox


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def broker(request, redis_url):
    """The workers' broker URL: the state's Redis, or with ``amqp`` (indirect) RabbitMQ on the
    module's vhost, the state staying in Redis."""
    if getattr(request, "param", "redis") == "amqp":
        return request.getfixturevalue("rabbit_vhost").url
    return redis_url


# The scenarios that must hold on either broker.
ON_EITHER_BROKER = pytest.mark.parametrize("broker", ["redis", "amqp"], indirect=True)


@pytest.fixture
def cluster(redis_url, broker, sandbox, tmp_path):
    """Starts workers on demand; stops every one at the end."""
    started = []

    def start(name="w", *, env_overrides=None, **options):
        env = worker_env(broker, sandbox.url, **(env_overrides or {}))
        env["MSGWORKER_REDIS_URL"] = redis_url
        worker = start_worker(env, tmp_path / f"{name}-{len(started)}.log", **options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
    for worker in started:
        assert API_KEY not in worker.log()


def msgworker(redis_url, *args, env_overrides=None):
    """Run the real console script; returns (exit code, stdout, stderr)."""
    env = worker_env(redis_url, "http://127.0.0.1:9", **(env_overrides or {}))
    done = run_msgworker(env, *args)
    return done.returncode, done.stdout, done.stderr


def states(runtime, ids):
    return [runtime.jobs.get(i).state for i in ids]


def all_settled(runtime, ids, settled=(JobState.SENT, JobState.PARKED)):
    return all(state in settled for state in states(runtime, ids))


@ON_EITHER_BROKER
def test_halt_stops_every_worker_within_a_second_and_resume_sends_each_once(
    runtime, sandbox, cluster
):
    """AUTH_001 on one of two workers: no call reaches the Gateway later than the calls in flight
    when the halt was written (50 ms), nothing lost; resume sends each once."""
    sandbox.configure(latency_ms=50, rate_per_sec=1000, rate_per_min=100_000)
    cluster("a", concurrency=4)
    cluster("b", concurrency=4)
    ids = runtime.producer.enqueue_many([text(i) for i in range(300)])
    wait_for(lambda: sandbox.stats()["accepted"] >= 30, what="sending under way")
    recorded = Recorded(runtime.redis, runtime.keys.halt("default"))
    sandbox.script({"status": 401, "code": "AUTH_001", "group": "UNAUTHORIZED"})
    since = recorded.wait()
    time.sleep(1.5)  # long enough for any worker that ignored the halt to show it
    requests_after_halt = sandbox.stats()["requests"]
    late = [m["at"] - since for m in sandbox.messages() if m["at"] > since + IN_FLIGHT_S]
    assert late == []
    time.sleep(1.0)
    assert sandbox.stats()["requests"] == requests_after_halt  # zero API calls while halted
    pending = [s for s in states(runtime, ids) if s != JobState.SENT]
    assert pending
    assert set(pending) <= {JobState.HELD, JobState.QUEUED}
    assert runtime.dead_letters.counts() == {}

    code, out, _ = msgworker(runtime.settings.broker_url, "resume")
    assert code == 0
    assert "held job(s) released" in out
    wait_for(lambda: all_settled(runtime, ids), timeout_s=30, what="all sent after resume")
    assert set(states(runtime, ids)) == {JobState.SENT}
    bodies = sandbox.bodies()
    assert len(bodies) == 300
    assert max(bodies.values()) == 1  # each exactly once


@ON_EITHER_BROKER
def test_billing_episode_parks_alerts_once_and_replay_drains_after_top_up(
    runtime, sandbox, cluster, receiver
):
    """BILL_001: parked, one alert, breaker spares the API; top-up and replay send each once."""
    sandbox.configure(balance=0.02, rate_per_sec=1000, rate_per_min=100_000)  # 20 messages
    cluster(concurrency=4, env_overrides={"alert_webhook_url": receiver.url})
    ids = runtime.producer.enqueue_many([text(i) for i in range(200)])
    wait_for(lambda: all_settled(runtime, ids), timeout_s=30, what="all sent or parked")
    parked = [i for i, s in zip(ids, states(runtime, ids), strict=True) if s is JobState.PARKED]
    assert len(parked) == 180
    assert runtime.dead_letters.counts() == {"BILL_001": 180}
    # The breaker kept doomed calls away: beyond the 20 paid ones, only the calls in flight on
    # the 4 threads when the first BILL_001 came back, and at most one probe (its interval is
    # 30 s, longer than this test).
    refused = sandbox.stats()["requests"] - sandbox.stats()["accepted"]
    assert sandbox.stats()["accepted"] == 20
    assert 1 <= refused <= 4 + 1
    assert runtime.switches.breaker("default") is not None
    wait_for(lambda: receiver.bodies, what="the alert")
    time.sleep(0.5)
    firing = [b for b in receiver.bodies if b["status"] == "firing"]
    assert [(b["kind"], b["code"]) for b in firing] == [("billing", "BILL_001")]

    sandbox.post("/sandbox/topup", {"amount": 10.0})
    code, out, err = msgworker(
        runtime.settings.broker_url,
        "dlq",
        "replay",
        "--code",
        "BILL_001",
        "--rate",
        "200",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["replayed"] == 180
    wait_for(lambda: all_settled(runtime, ids), timeout_s=30, what="the drain")
    assert set(states(runtime, ids)) == {JobState.SENT}
    assert runtime.dead_letters.counts() == {}
    bodies = sandbox.bodies()
    assert len(bodies) == 200
    assert max(bodies.values()) == 1
    wait_for(lambda: any(b["status"] == "resolved" for b in receiver.bodies), what="resolved")
    assert runtime.switches.breaker("default") is None


@pytest.mark.parametrize(
    ("broker", "at_most_once"),
    [("redis", True), ("redis", False), ("amqp", False)],
    ids=["at-most-once", "at-least-once", "at-least-once-amqp"],
    indirect=["broker"],
)
def test_kill_9_mid_send_loses_nothing(runtime, sandbox, cluster, tmp_path, at_most_once):
    """kill -9 of a worker during its calls (300 ms latency): no job lost; duplicates only by choice.

    With the at-most-once table, jobs whose call was cut off are parked as ambiguous and nothing
    is sent twice. With the default (at-least-once) they are sent again, and only they can be
    duplicates.
    """
    overrides = {}
    if at_most_once:
        table = tmp_path / "routing.toml"
        table.write_text(
            default_routing_path()
            .read_text()
            .replace(
                'ambiguous = { action = "backoff" }',
                'ambiguous = { action = "park", reason = "ambiguous" }',
            )
        )
        overrides["routing_file"] = str(table)
    sandbox.configure(latency_ms=300, rate_per_sec=1000, rate_per_min=100_000)
    victim = cluster("victim", concurrency=8, env_overrides=overrides)
    ids = runtime.producer.enqueue_many([text(i) for i in range(60)])
    wait_for(lambda: sandbox.stats()["accepted"] >= 8, what="calls in flight")
    victim.kill()
    cluster("rescuer", concurrency=8, env_overrides=overrides)
    wait_for(lambda: all_settled(runtime, ids), timeout_s=60, what="every job settled")

    jobs = [runtime.jobs.get(i) for i in ids]
    bodies = sandbox.bodies()
    lost_calls = {j.id for j in jobs if any(e["code"] == "WORKER_LOST" for e in j.history)}
    for job in jobs:
        sent_times = bodies[job.message["text"]["body"]]
        if job.state is JobState.SENT:
            assert sent_times >= 1
        else:
            assert job.id in lost_calls
            assert runtime.dead_letters.get(job.id).reason == "ambiguous"
        if sent_times > 1:
            assert job.id in lost_calls  # only a call cut off by the crash may repeat
    if at_most_once:
        assert max(bodies.values()) == 1
    else:
        assert {j.state for j in jobs} == {JobState.SENT}


def test_delay_longer_than_the_visibility_timeout_is_sent_once(runtime, sandbox, cluster):
    """A job delayed well past a 1 s visibility timeout is sent exactly once, on time."""
    cluster(concurrency=4, env_overrides={"visibility_timeout_s": "1"})
    when = datetime.now(UTC) + timedelta(seconds=4)
    job_id = runtime.producer.enqueue(text("late"), send_at=when)
    wait_for(lambda: runtime.jobs.get(job_id).state is JobState.SENT, timeout_s=15)
    time.sleep(2.5)  # two more visibility timeouts: a re-delivery would show now
    (accepted,) = sandbox.messages()
    assert when.timestamp() <= accepted["at"] <= when.timestamp() + 1.0


def test_prefork_worker_via_celery_command_takes_every_path(runtime, sandbox, cluster):
    """`celery -A worker.service.app worker` with the prefork pool: success, backoff, park, halt."""
    cluster(pool="prefork", concurrency=2, via_celery=True)
    sandbox.script({"status": 502, "raw_body": "<html/>"})
    retried = runtime.producer.enqueue(text("retried"))
    wait_for(lambda: runtime.jobs.get(retried).state is JobState.SENT)
    sandbox.script({"status": 400, "code": "GW_001"})
    parked = runtime.producer.enqueue(text("parked"))
    wait_for(lambda: runtime.jobs.get(parked).state is JobState.PARKED)
    sandbox.script({"status": 401, "code": "AUTH_001", "group": "UNAUTHORIZED"})
    held = runtime.producer.enqueue(text("held"))
    wait_for(lambda: runtime.jobs.get(held).state is JobState.HELD)
    assert runtime.switches.resume("default") == 1
    wait_for(lambda: runtime.jobs.get(held).state is JobState.SENT)
    assert [e["action"] for e in runtime.jobs.get(retried).history][1] == "backoff"
    assert sandbox.stats()["accepted"] == 2


def test_scheduled_job_survives_a_worker_restart_and_is_sent_once_on_time(
    runtime, sandbox, cluster
):
    """A job due in 3 s, its worker stopped and a new one started meanwhile: sent once, on time
    (within a second of its time, or of the new worker being ready if a loaded machine took
    longer than 3 s to start it), never early."""
    first = cluster("first", concurrency=2)
    when = datetime.now(UTC) + timedelta(seconds=3)
    job_id = runtime.producer.enqueue(text("across restarts"), send_at=when)
    first.stop()
    cluster("second", concurrency=2)
    ready = time.time()
    wait_for(lambda: runtime.jobs.get(job_id).state is JobState.SENT, timeout_s=15)
    (accepted,) = sandbox.messages()
    assert when.timestamp() <= accepted["at"] <= max(when.timestamp(), ready) + 1.0
