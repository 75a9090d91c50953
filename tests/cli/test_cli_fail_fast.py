"""Every command but `worker` fails fast with Redis or the broker down: exit 69 and one line
naming the masked URL, within REDIS_TIMEOUT_S of start-up, never a worker's long retry."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.cluster import BIN
from tests.support.processes import RedisServer, free_port

# Every test here runs real child processes and times them against a start-up: run alone.
pytestmark = [pytest.mark.processes, pytest.mark.quiet]

TIMEOUT_S = 0.5
# Start-up of the command and the machine's load (the suite runs on two processes). Still far
# from a command that retried as a worker does: 7 s of backoff when refused, 10 s when Redis hangs.
SLACK_S = 3.0
JOB_ID = "0123456789abcdef0123456789abcdef"
COMMANDS = [
    ["enqueue", "--to", "905321234567", "--text", "hi"],
    ["status"],
    ["status", "--json"],
    ["job", JOB_ID],
    ["halt", "--reason", "test"],
    ["resume"],
    ["cooldown", "clear"],
    ["dlq", "list"],
    ["dlq", "show", JOB_ID],
    ["dlq", "export"],
    ["dlq", "replay", "--all"],
    ["dlq", "purge", "--all", "--yes"],
]


def run(args: list[str], **env_vars: str) -> tuple[int, float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGWORKER_")}
    env |= {"MSGWORKER_REDIS_TIMEOUT_S": str(TIMEOUT_S), **env_vars}
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 - our console script
        [str(BIN / "msgworker"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=BIN,  # no .env here
    )
    return done.returncode, time.monotonic() - started, done.stderr


def start_up_s() -> float:
    """How long a command takes to start and be refused before it talks to anyone."""
    code, elapsed, _ = run(["enqueue", "--to", "1", "--text", "x"])
    assert code == 2
    return elapsed


def assert_each_fails_fast(url_vars: dict[str, str], what: str) -> None:
    base = start_up_s()
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda args: (args, *run(args, **url_vars)), COMMANDS))
    for args, code, elapsed, stderr in results:
        assert code == 69, (args, code, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, (args, stderr)
        assert f"cannot reach {what}" in lines[0], (args, stderr)
        assert "S3cr3t" not in stderr
        took = elapsed
        if took >= base + TIMEOUT_S + SLACK_S:  # run beside another: once more, alone
            took = run(args, **url_vars)[1]
        assert took < base + TIMEOUT_S + SLACK_S, (args, took, base)


def test_every_command_exits_69_fast_when_nobody_listens():
    """Redis on a port nobody listens on: each command exits 69 within the timeout."""
    url = f"redis://:S3cr3t@127.0.0.1:{free_port()}/0"
    assert_each_fails_fast({"MSGWORKER_BROKER_URL": url}, "Redis")


def test_every_command_exits_69_fast_when_redis_hangs(tmp_path):
    """A Redis that accepts connections and never answers (SIGSTOP): each command exits 69
    within the timeout."""
    server = RedisServer(tmp_path)
    server.start()
    assert server.pid is not None
    os.kill(server.pid, signal.SIGSTOP)
    try:
        assert_each_fails_fast({"MSGWORKER_BROKER_URL": server.url}, "Redis")
    finally:
        os.kill(server.pid, signal.SIGCONT)
        server.stop()


@pytest.mark.parametrize("hang", [False, True])
def test_status_exits_69_fast_when_only_the_broker_is_down(redis_url, tmp_path, hang):
    """Redis answers, the broker does not (nobody listens, or it hangs): status exits 69 within
    the timeout, naming the broker."""
    server = None
    if hang:
        server = RedisServer(tmp_path)
        server.start()
        assert server.pid is not None
        os.kill(server.pid, signal.SIGSTOP)
        broker = server.url
    else:
        broker = f"redis://127.0.0.1:{free_port()}/0"
    try:
        base = start_up_s()
        for args in (["status"], ["status", "--json"]):
            code, elapsed, stderr = run(
                args, MSGWORKER_BROKER_URL=broker, MSGWORKER_REDIS_URL=redis_url
            )
            assert code == 69, (args, stderr)
            assert "cannot reach the broker" in stderr, stderr
            assert elapsed < base + TIMEOUT_S + SLACK_S, (args, elapsed, base)
    finally:
        if server is not None and server.pid is not None:
            os.kill(server.pid, signal.SIGCONT)
            server.stop()
