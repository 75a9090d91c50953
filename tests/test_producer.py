"""worker/producer.py: producers fail fast when Redis is down or hung (Unavailable within the
Redis timeout, exit 69 from the CLI), and refuse what must never be enqueued."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.support.cluster import BIN
from tests.support.processes import RedisServer, free_port
from worker.errors import Unavailable
from worker.runtime import Runtime
from worker.settings import Settings

TIMEOUT_S = 2.0
MESSAGE = {"to": "905321234567", "type": "text", "text": {"body": "hello"}}


def _runtime(url: str) -> Runtime:
    return Runtime(Settings(broker_url=url, redis_timeout_s=TIMEOUT_S, _env_file=None))


@pytest.fixture
def own_redis(tmp_path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, to stop or freeze."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.pid is not None:
        os.kill(server.pid, signal.SIGCONT)
    server.stop()


def _refused_within_the_timeout(runtime: Runtime) -> float:
    started = time.monotonic()
    with pytest.raises(Unavailable):
        runtime.producer.enqueue(MESSAGE)
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT_S + 1, elapsed
    return elapsed


def test_enqueue_to_a_port_nobody_listens_on_raises_unavailable_at_once():
    """Nothing listening: Unavailable, well within the timeout (it used to take 9.5 s)."""
    runtime = _runtime(f"redis://127.0.0.1:{free_port()}/0")
    try:
        assert _refused_within_the_timeout(runtime) < 1
    finally:
        runtime.close()


def test_enqueue_after_redis_stopped_raises_unavailable_within_the_timeout(own_redis):
    """A Redis that went away under a pooled connection: Unavailable, not a long retry."""
    runtime = _runtime(own_redis.url)
    try:
        runtime.producer.enqueue(MESSAGE)
        own_redis.stop()
        _refused_within_the_timeout(runtime)
    finally:
        runtime.close()


def test_enqueue_to_a_hung_redis_raises_unavailable_within_the_timeout(own_redis):
    """A Redis that accepts connections and never answers (SIGSTOP) times out too."""
    runtime = _runtime(own_redis.url)
    try:
        runtime.producer.enqueue(MESSAGE)
        assert own_redis.pid is not None
        os.kill(own_redis.pid, signal.SIGSTOP)
        _refused_within_the_timeout(runtime)
        fresh = _runtime(own_redis.url)  # a new connection to the frozen server
        try:
            _refused_within_the_timeout(fresh)
        finally:
            fresh.close()
    finally:
        os.kill(own_redis.pid, signal.SIGCONT)
        runtime.close()


def _enqueue_command(url: str, to: str) -> tuple[int, float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGWORKER_")}
    env |= {"MSGWORKER_BROKER_URL": url, "MSGWORKER_REDIS_TIMEOUT_S": str(TIMEOUT_S)}
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 - our console script
        [str(BIN / "msgworker"), "enqueue", "--to", to, "--text", "hello"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=BIN,  # no .env here
    )
    return done.returncode, time.monotonic() - started, done.stderr


def test_the_enqueue_command_exits_69_within_the_timeout_when_redis_hangs(own_redis):
    """`msgworker enqueue` against a frozen Redis: exit 69 and one line, as fast as the API."""
    # The same command refused before it reaches Redis: the start-up time of the command.
    code, start_up_s, _ = _enqueue_command(own_redis.url, to="1")
    assert code == 2
    assert own_redis.pid is not None
    os.kill(own_redis.pid, signal.SIGSTOP)
    try:
        code, elapsed, stderr = _enqueue_command(own_redis.url, to=MESSAGE["to"])
    finally:
        os.kill(own_redis.pid, signal.SIGCONT)
    assert code == 69, stderr
    assert "cannot reach Redis" in stderr
    assert elapsed < start_up_s + TIMEOUT_S + 1, (elapsed, start_up_s)


def test_enqueue_after_a_redis_restart_succeeds_on_a_fresh_connection(own_redis):
    """Failing fast does not mean failing on a pooled connection Redis closed meanwhile."""
    runtime = _runtime(own_redis.url)
    try:
        runtime.producer.enqueue(MESSAGE)
        own_redis.restart()
        assert runtime.producer.enqueue(MESSAGE)
    finally:
        runtime.close()
