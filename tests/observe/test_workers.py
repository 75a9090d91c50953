"""The workers list: each worker's heartbeat says what it is and what it sent in the last minute,
and ``msgworker workers`` shows it (real Redis; a real worker for the end-to-end one)."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.cluster import run_msgworker, start_worker, worker_env
from tests.support.jobs import KEYS
from tests.support.messages import text
from tests.support.processes import wait_for
from worker.observe.workers import (
    ALIVE_S,
    FORGOTTEN_S,
    Heartbeat,
    SendsLastMinute,
    WorkerInfo,
    list_workers,
)

NOW = 1_800_000_000.0


def test_the_sends_of_the_last_minute_come_from_the_running_total():
    """Samples a beat apart: the difference over the last minute, older samples let go."""
    sends = SendsLastMinute()
    assert sends.update(NOW, 100) == 0
    assert sends.update(NOW + 10, 130) == 30
    assert sends.update(NOW + 60, 160) == 60
    assert sends.update(NOW + 80, 170) == 40  # 130 at +10 is over a minute old at +80


def test_a_beat_records_what_the_worker_is_and_a_stop_removes_it(redis_client):
    """The list shows each worker with its host, pid, pool, threads, beat and sends; a stopped
    one is gone, one long silent is forgotten, and an alive flag follows ALIVE_S."""
    totals = iter([5.0, 12.0])
    first = Heartbeat(
        redis_client, KEYS, WorkerInfo("w1@h:1", "h", 1, "thread", 8, NOW), lambda: next(totals)
    )
    other = Heartbeat(redis_client, KEYS, WorkerInfo("w2@h:2", "h", 2, "prefork", 2, NOW))
    first.beat(NOW)
    first.beat(NOW + 10)
    other.beat(NOW - ALIVE_S - 1)
    [newest, older] = list_workers(redis_client, KEYS)
    assert (newest.name, newest.pool, newest.concurrency) == ("w1@h:1", "thread", 8)
    assert (newest.last_beat, newest.sent_last_minute) == (NOW + 10, 7)
    assert newest.alive(NOW + 10)
    assert not older.alive(NOW + 10)
    other.stop()
    assert [w.name for w in list_workers(redis_client, KEYS)] == ["w1@h:1"]
    Heartbeat(redis_client, KEYS, WorkerInfo("w3@h:3", "h", 3, "thread", 1, NOW)).beat(
        NOW + 11 + FORGOTTEN_S
    )
    assert [w.name for w in list_workers(redis_client, KEYS)] == ["w3@h:3"]


@pytest.mark.processes
def test_msgworker_workers_lists_a_running_worker_and_its_sends(redis_url, sandbox, tmp_path):
    """A real worker: `msgworker workers --json` names its host, pid, pool and threads, and
    counts the 12 jobs it sent within the last minute."""
    env = worker_env(redis_url, sandbox.url)
    worker = start_worker(env, tmp_path / "w.log", concurrency=3)
    try:
        from worker.service.runtime import Runtime  # noqa: PLC0415
        from worker.settings import Settings  # noqa: PLC0415

        runtime = Runtime(Settings(broker_url=redis_url, _env_file=None))
        runtime.producer.enqueue_many([text(n) for n in range(12)])
        wait_for(lambda: sandbox.stats()["accepted"] == 12, timeout_s=30, what="12 sent")

        def listed():
            done = run_msgworker(env, "workers", "--json")
            assert done.returncode == 0, done.stderr
            [found] = json.loads(done.stdout)["workers"]
            return found if found["sent_last_minute"] == 12 else None

        found = wait_for(listed, timeout_s=30, what="the sends in the worker's heartbeat")
        runtime.close()
    finally:
        worker.stop()
    assert found["pid"] == worker.process.pid
    assert (found["pool"], found["concurrency"], found["alive"]) == ("thread", 3, True)
    assert found["host"]
    assert time.time() - found["last_beat"] < ALIVE_S
