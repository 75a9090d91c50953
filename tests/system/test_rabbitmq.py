"""RabbitMQ as the broker: the machine's RabbitMQ, a vhost of this module's own, state in Redis.

The pipeline's scenarios on RabbitMQ (halt, billing breaker and replay, kill -9) run in
tests/system/test_scenarios.py, parametrised by broker.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.support.cluster import run_msgworker, worker_env
from tests.support.messages import text
from tests.support.processes import wait_for
from tests.support.rabbit import stopped_app
from worker.service.app import create_app, dispatcher
from worker.settings import Settings
from worker.store.states import JobState

pytestmark = pytest.mark.e2e

QUEUE = "messages"


@pytest.fixture
def env(rabbit_vhost, redis_url, sandbox):
    """A worker's (and the CLI's) environment: RabbitMQ on the module's vhost, state in Redis."""
    env = worker_env(rabbit_vhost.url, sandbox.url)
    env["MSGWORKER_REDIS_URL"] = redis_url
    return env


def sent_once_each(runtime, sandbox, ids, timeout_s=90):
    """Wait until every job is sent; return how many times each body was accepted."""
    wait_for(
        lambda: all(runtime.jobs.get(i).state is JobState.SENT for i in ids),
        timeout_s=timeout_s,
        interval_s=0.2,
        what="every job sent",
    )
    return sandbox.bodies()


def test_dispatches_go_to_a_quorum_queue_with_confirmed_publishes(rabbit_vhost, redis_url, env):
    """The pump's publisher declares the queue as a quorum queue, in confirm mode; `msgworker
    status` counts what waits in it."""
    app = create_app(Settings(broker_url=rabbit_vhost.url, redis_url=redis_url, _env_file=None))
    dispatches = [(f"job-{n}", 1, "default", f"key-{n}", "") for n in (1, 2)]
    dispatcher(app, QUEUE, consumers=2)(dispatches)  # a message each
    # The publishing connection stays in the app's pool, its channel open, until closed here.
    assert rabbit_vhost.confirming_channels() >= 1
    app.pool.force_close_all()
    assert rabbit_vhost.queue_types() == {QUEUE: "quorum"}

    done = run_msgworker(env, "status", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["queue"]["depth"] == 2


def test_two_workers_on_one_host_with_default_names_both_consume(
    runtime, sandbox, workers, env, rabbit_vhost, tmp_path
):
    """Two `msgworker worker` commands on one host, no -n given: both start under names of their
    own and consume the queue (no RESOURCE_LOCKED on the control queue)."""
    first = workers(env, tmp_path / "first.log", concurrency=4)
    second = workers(env, tmp_path / "second.log", concurrency=4)
    names = {re.search(r"(\S+@\S+) ready\.", w.log()).group(1) for w in (first, second)}
    assert len(names) == 2
    wait_for(lambda: rabbit_vhost.consumers(QUEUE) == 2, interval_s=0.5, what="two consumers")
    ids = runtime.producer.enqueue_many([text(i) for i in range(40)])
    bodies = sent_once_each(runtime, sandbox, ids)
    assert len(bodies) == 40
    assert max(bodies.values()) == 1


def test_a_worker_killed_with_sigkill_gives_its_dispatches_back_at_once(
    runtime, sandbox, workers, env, rabbit_vhost, tmp_path
):
    """kill -9 of a worker holding two dispatches: RabbitMQ puts both back on the queue at once
    (no pump is left to dispatch them again), and a new worker sends both jobs."""
    sandbox.configure(latency_ms=3000)
    victim = workers(env, tmp_path / "victim.log", concurrency=2)
    ids = runtime.producer.enqueue_many([text(1), text(2)])
    wait_for(lambda: sandbox.stats()["requests"] == 2, timeout_s=20, what="two calls in flight")
    assert rabbit_vhost.ready(QUEUE) == 0
    victim.kill()
    wait_for(lambda: rabbit_vhost.ready(QUEUE) == 2, interval_s=0.5, what="dispatches given back")
    sandbox.configure(latency_ms=0)
    workers(env, tmp_path / "rescuer.log", concurrency=2)
    assert set(sent_once_each(runtime, sandbox, ids, timeout_s=60)) == {"message 1", "message 2"}


def test_a_rabbitmq_restart_mid_run_loses_nothing(runtime, sandbox, workers, env, tmp_path):
    """RabbitMQ stopped and started while jobs are sending: the CLI says it cannot reach the
    broker (one line, no traceback); the worker reconnects by itself and every job is sent once."""
    sandbox.configure(latency_ms=100)  # 4 calls at a time: 40 sends a second
    worker = workers(env, tmp_path / "worker.log", concurrency=4)
    ids = runtime.producer.enqueue_many([text(i) for i in range(400)])
    wait_for(lambda: sandbox.stats()["accepted"] >= 20, timeout_s=30, what="sending under way")
    with stopped_app():
        assert sandbox.stats()["accepted"] < len(ids)  # the broker went away mid-run
        done = run_msgworker(env, "status")
        assert done.returncode == 69
        assert done.stderr.startswith("msgworker: cannot reach the broker at amqp://")
        assert len(done.stderr.splitlines()) == 1
    bodies = sent_once_each(runtime, sandbox, ids)
    assert len(bodies) == len(ids)
    assert max(bodies.values()) == 1
    assert worker.process.poll() is None  # the same worker, never restarted
