"""Account switches: each change is atomic, and no reader trips over a partial record."""

from __future__ import annotations

import json
import subprocess
import threading

import httpx
import pytest

from tests.support.cluster import API_KEY, run_msgworker, start_worker, worker_env
from tests.support.processes import free_port
from worker.sandbox.server import RunningSandbox, SandboxConfig
from worker.store.keys import Keys
from worker.store.switches import Switches

KEYS = Keys()


def test_halt_and_resume_racing_never_leave_half_a_halt(redis_client):
    """Threads halting and resuming while another reads: every halt seen has all its fields."""
    stop = threading.Event()
    partial: list[dict] = []

    def flip() -> None:
        switches = Switches(redis_client, KEYS)
        for _ in range(400):
            switches.halt("default", reason="race")
            switches.resume("default")

    def watch() -> None:
        while not stop.is_set():
            raw = redis_client.hgetall(KEYS.halt("default"))
            if raw and set(raw) != {"since", "code", "reason", "by"}:
                partial.append(raw)

    watcher = threading.Thread(target=watch)
    watcher.start()
    flippers = [threading.Thread(target=flip) for _ in range(3)]
    for thread in flippers:
        thread.start()
    for thread in flippers:
        thread.join()
    stop.set()
    watcher.join()
    assert partial == []


def test_a_halt_is_created_whole_and_once(redis_client):
    """The first halt wins and carries code, reason and since; a second one changes nothing."""
    switches = Switches(redis_client, KEYS)
    assert switches.halt("default", reason="first", code="MANUAL")
    assert not switches.halt("default", reason="second", code="AUTH_001")
    halt = switches.halted("default")
    assert (halt.code, halt.reason) == ("MANUAL", "first")
    assert halt.since is not None


@pytest.mark.parametrize("fields", [{"code": "MANUAL"}, {"since": "soon", "reason": "x"}])
def test_a_partial_halt_reads_as_halted_since_an_unknown_time(redis_client, fields):
    """A halt hash missing fields (or with an unreadable time) is a halt, since unknown."""
    redis_client.hset(KEYS.halt("default"), mapping=fields)
    redis_client.hset(KEYS.breaker("default"), mapping={"half_open": "1"})
    switches = Switches(redis_client, KEYS)
    halt = switches.halted("default")
    assert halt is not None
    assert halt.since is None
    breaker = switches.breaker("default")
    assert breaker is not None  # the scripts see it open, so do the readers
    assert breaker.since is None


def msgworker(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_msgworker(worker_env(redis_url, "http://127.0.0.1:9"), *args)


@pytest.mark.e2e
def test_status_and_metrics_survive_a_partial_halt(redis_url, redis_client, tmp_path):
    """A halt hash without ``since``: status, status --json and /metrics answer, halted."""
    redis_client.hset(KEYS.halt("default"), mapping={"code": "MANUAL", "reason": "by hand"})
    shown = msgworker(redis_url, "status")
    assert shown.returncode == 0, shown.stderr
    assert "HALTED" in shown.stdout
    as_json = msgworker(redis_url, "status", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["halted"] == {
        "code": "MANUAL",
        "reason": "by hand",
        "since": None,
        "by": "operator",  # an older version's record: its MANUAL code says so
    }
    port = free_port()
    with RunningSandbox(SandboxConfig(api_keys=(API_KEY,))) as sandbox:
        env = worker_env(redis_url, sandbox.url, metrics_port=str(port))
        worker = start_worker(env, tmp_path / "w.log", concurrency=2)
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        finally:
            worker.stop()
    assert answer.status_code == 200
    assert 'msgworker_halted{account="default"} 1.0' in answer.text
