"""Shared fixtures, and the tiers: every test is ``unit``, ``redis`` or ``processes``.

The fixtures start real servers on free ports; nothing already running is used. A test's tier
comes from the fixtures it requests and its markers (tests/support/tiers.py says how), and a
test that starts more than its tier allows fails.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.cluster import API_KEY, Sandbox, WorkerProcess, start_worker
from tests.support.jobs import KEYS
from tests.support.processes import RedisServer
from tests.support.rabbit import Vhost, vhost
from tests.support.tiers import SpawnWatch, overstep, tier_of
from worker.logs import SECRETS
from worker.sandbox.server import RunningSandbox, SandboxConfig
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.jobs import JobStore
from worker.store.transitions import Transitions

TIER = pytest.StashKey[str]()
_watch = SpawnWatch()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier, before ``-m`` selects (so ``-m unit`` works)."""
    for item in items:
        tier = tier_of({mark.name for mark in item.iter_markers()}, item.fixturenames)
        item.stash[TIER] = tier
        item.add_marker(tier)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    _watch.start()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    result = yield
    started = overstep(item.stash[TIER], _watch.stop())
    if started:
        pytest.fail(
            f"this test is in the {item.stash[TIER]} tier but started {', '.join(started)}: "
            "request the fixture that starts it (`workers`) or mark the test "
            "`@pytest.mark.processes` (tests/support/tiers.py)",
            pytrace=False,
        )
    return result


@pytest.fixture(autouse=True)
def _own_secrets() -> Iterator[None]:
    """Each test starts with the secrets the process held before it: the registry only grows
    (a rotated-out key stays hidden), so a test's keys would otherwise hide words in the logs
    of every later test in this process (a key 'sk_delivery_test' hid 'delivery')."""
    held = (SECRETS._held, SECRETS._fragments)
    yield
    SECRETS._held, SECRETS._fragments = held


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One private redis-server for the session."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    """The private server's URL, flushed before each test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url):
    """A client of the private server, flushed before each test."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def store_keys():
    """The key names the store fixtures use; a module with a prefix of its own overrides it."""
    return KEYS


@pytest.fixture
def jobs(redis_client, store_keys):
    """The job store (writing and reading jobs) on the private server."""
    return JobStore(redis_client, store_keys)


@pytest.fixture
def transitions(redis_client, store_keys):
    """A job's transitions on the private server (a sent job kept an hour)."""
    return Transitions(redis_client, store_keys, retention_s=3600)


@pytest.fixture
def own_redis(tmp_path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, to stop, freeze or reconfigure."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.pid is not None:
        os.kill(server.pid, signal.SIGCONT)  # a test may leave it frozen
    server.stop()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """The fake Gateway on a thread of this process, generous rate limits; its admin API."""
    with RunningSandbox(SandboxConfig(api_keys=(API_KEY,))) as running:
        admin = Sandbox(running.url)
        admin.configure(rate_per_sec=1000, rate_per_min=100_000)
        yield admin
        admin.close()


@pytest.fixture(scope="module")
def rabbit_vhost() -> Iterator[Vhost]:
    """A vhost of this module's own on the machine's RabbitMQ, deleted after the module."""
    with vhost() as created:
        yield created


@pytest.fixture
def settings(redis_url, request) -> Settings:
    """Settings for the private Redis; pointed at the sandbox when the test uses it. No pair
    pacing: the tests' messages go to one number (tests/support/messages.py)."""
    gateway: dict[str, Any] = {}
    if "sandbox" in request.fixturenames:
        gateway = {"api_base_url": request.getfixturevalue("sandbox").url, "sandbox": True}
    return Settings(broker_url=redis_url, _env_file=None, pair_interval_s=0, **gateway)


@pytest.fixture
def runtime(settings) -> Iterator[Runtime]:
    """The producer and operator side (job store, switches, dead letters) on ``settings``."""
    runtime = Runtime(settings)
    yield runtime
    runtime.close()


@pytest.fixture
def workers() -> Iterator[Callable[..., WorkerProcess]]:
    """Starts real `msgworker worker` processes (``start_worker``'s arguments); stops them all."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], log_path: Path, **options: Any) -> WorkerProcess:
        started.append(start_worker(env, log_path, **options))
        return started[-1]

    yield start
    for worker in started:
        worker.stop()
