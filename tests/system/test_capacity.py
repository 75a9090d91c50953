"""Redis never evicts a job and a full Redis loses none: refused policies, OOM at enqueue."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis

from tests.support.cluster import BIN, start_worker, worker_env
from tests.support.processes import wait_for
from worker.errors import StoreFull
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.states import JobState

pytestmark = pytest.mark.e2e


@pytest.fixture
def private_redis(own_redis):
    """A redis-server of this test's own, since these tests change its memory settings."""
    client = redis.Redis.from_url(own_redis.url, decode_responses=True)
    yield own_redis, client
    client.close()


def test_a_worker_refuses_a_redis_that_may_evict_any_key(private_redis, tmp_path):
    """maxmemory-policy allkeys-lru: the worker exits 78 with one line naming the policy."""
    server, client = private_redis
    client.config_set("maxmemory-policy", "allkeys-lru")
    done = subprocess.run(  # noqa: S603
        [str(BIN / "msgworker"), "worker", "--concurrency", "1"],
        env=worker_env(server.url, "http://127.0.0.1:9"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 78
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "allkeys-lru" in lines[0]


def test_a_worker_warns_about_a_redis_that_evicts_keys_with_a_ttl(private_redis, sandbox, tmp_path):
    """volatile-lru: the worker starts, and says so in a warning event."""
    server, client = private_redis
    client.config_set("maxmemory-policy", "volatile-lru")
    worker = start_worker(worker_env(server.url, sandbox.url), tmp_path / "w.log", concurrency=1)
    try:
        wait_for(lambda: "redis.evicts_keys_with_ttl" in worker.log(), what="the warning")
        assert "volatile-lru" in worker.log()
    finally:
        worker.stop()


def test_a_full_redis_refuses_enqueue_and_delays_sends_losing_nothing(
    private_redis, sandbox, tmp_path
):
    """maxmemory reached: enqueue raises StoreFull; the worker sends nothing and keeps trying;
    once there is room again every job goes out exactly once."""
    server, client = private_redis
    runtime = Runtime(
        Settings(broker_url=server.url, api_base_url=sandbox.url, sandbox=True, _env_file=None)
    )
    worker = start_worker(worker_env(server.url, sandbox.url), tmp_path / "w.log", concurrency=4)
    try:
        when = datetime.now(UTC) + timedelta(seconds=2)
        ids = runtime.producer.enqueue_many(
            [
                {
                    "message": {"to": "905321234567", "type": "text", "text": {"body": f"m{n}"}},
                    "send_at": when,
                }
                for n in range(20)
            ]
        )
        client.config_set("maxmemory", 1)  # far below what is used: every new write refused
        with pytest.raises(StoreFull):
            runtime.producer.enqueue({"to": "905321234567", "type": "text", "text": {"body": "x"}})
        time.sleep(max(0.0, when.timestamp() + 2 - time.time()))  # due while Redis is full
        assert sandbox.stats()["accepted"] == 0
        client.config_set("maxmemory", 0)
        wait_for(
            lambda: all(runtime.jobs.get(i).state is JobState.SENT for i in ids),
            timeout_s=90,
            interval_s=0.2,
            what="every job sent once there is room",
        )
        bodies = sandbox.bodies()
        assert len(bodies) == 20
        assert max(bodies.values()) == 1
    finally:
        worker.stop()
        runtime.close()
