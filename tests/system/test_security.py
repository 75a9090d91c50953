"""Security: JSON only on the broker, the API key nowhere, no phone number in metrics, the
dependencies audited, ruff's security rules kept on."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import httpx
import pytest
from kombu import Connection, Exchange, Producer

from security.audit import main as audit_main
from tests.support.cluster import API_KEY, BIN, run_msgworker, start_worker, worker_env
from tests.support.messages import text
from tests.support.processes import free_port, wait_for
from tests.support.secrets import leaked, secrets_in_redis
from worker.service.tasks import TASK_NAME
from worker.store.states import JobState

ROOT = Path(__file__).resolve().parents[2]
PHONES = ("905321234567", "447911123456", "15551234567")
_LABEL_VALUE = re.compile(r'="([^"]*)"')


@pytest.fixture
def sandbox(sandbox):
    """The shared sandbox, with rate limits no test here comes near."""
    sandbox.configure(rate_per_sec=10_000, rate_per_min=1_000_000)
    return sandbox


class Explode:
    """Unpickling this creates a directory: the proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.mark.processes
def test_a_pickled_task_message_is_refused_and_the_worker_lives(
    redis_url, runtime, sandbox, tmp_path
):
    """A pickle-serialised Celery message on the queue is not executed; the worker goes on."""
    worker = start_worker(worker_env(redis_url, sandbox.url), tmp_path / "w.log", concurrency=2)
    marker = tmp_path / "pickle-was-executed"
    try:
        with Connection(redis_url) as connection:
            producer = Producer(connection.channel(), exchange=Exchange("", type="direct"))
            producer.publish(
                [[Explode(marker), 1], {}, {}],
                routing_key=runtime.settings.queue,
                serializer="pickle",
                headers={"task": TASK_NAME, "id": "pickled-1", "lang": "py"},
            )
        wait_for(
            lambda: runtime.redis.llen(runtime.settings.queue) == 0,
            what="the pickled message consumed",
        )
        job_id = runtime.producer.enqueue(text("after the pickle"))
        wait_for(lambda: runtime.jobs.get(job_id).state is JobState.SENT, timeout_s=20)
        assert not marker.exists()
        assert worker.process.poll() is None
        assert "untrusted content of type pickle" in worker.log()
    finally:
        worker.stop()


@pytest.mark.processes
def test_the_api_key_is_in_no_log_metric_record_or_command_output(
    redis_url, runtime, sandbox, tmp_path
):
    """Answers that echo the key, every failure path: the key is in no log, /metrics, Redis value,
    DLQ record, job record or CLI output; no phone number is a metric label."""
    port = free_port()
    worker = start_worker(
        worker_env(redis_url, sandbox.url, metrics_port=str(port)),
        tmp_path / "w.log",
        concurrency=4,
    )
    try:
        sandbox.script(
            {
                "status": 401,
                "code": "AUTH_001",
                "group": "UNAUTHORIZED",
                "description": f"bad key {API_KEY}",
            },
        )
        held = runtime.producer.enqueue(text("held", PHONES[1]))
        wait_for(lambda: runtime.jobs.get(held).state is JobState.HELD, timeout_s=20)
        runtime.switches.resume("default")
        sandbox.script(
            {
                "status": 400,
                "code": "GW_001",
                "params": {"echo": f"Authorization: Bearer {API_KEY}"},
            },
            {"status": 502, "raw_body": f"<html>upstream said {API_KEY}</html>"},
            {
                "status": 429,
                "code": "RATE_001",
                "description": API_KEY,
                "params": {"retry_after": "1s"},
            },
        )
        ids = [runtime.producer.enqueue(text(n, PHONES[n % 3])) for n in range(12)]
        wait_for(
            lambda: all(
                runtime.jobs.get(i).state in {JobState.SENT, JobState.PARKED} for i in [held, *ids]
            ),
            timeout_s=30,
            what="every job settled",
        )
        assert runtime.dead_letters.counts() == {"GW_001": 1}
        exposition = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        outputs = []
        env = worker_env(redis_url, sandbox.url)
        for args in (
            ["dlq", "export"],
            ["dlq", "list", "--json"],
            ["status", "--json"],
            ["job", held, "--json"],
        ):
            done = run_msgworker(env, *args)
            assert done.returncode == 0, done.stderr
            outputs.append(done.stdout + done.stderr)
    finally:
        worker.stop()
    assert secrets_in_redis(runtime.redis, API_KEY) == []
    assert not leaked(worker.log(), API_KEY)
    assert not leaked(exposition, API_KEY)
    assert not [out for out in outputs if leaked(out, API_KEY)]
    (parked,) = [i for i in [held, *ids] if runtime.jobs.get(i).state is JobState.PARKED]
    assert "***" in runtime.dead_letters.get(parked).params["echo"]
    labels = _LABEL_VALUE.findall(exposition)
    assert labels  # the exposition has labelled series to look at
    assert not [value for value in labels if sum(ch.isdigit() for ch in value) >= 7]
    for phone in PHONES:
        assert phone not in exposition
        assert phone not in worker.log()


def test_locked_dependencies_have_no_known_vulnerabilities(capsys):
    """The audit of requirements.lock against the advisory mirror passes: every locked package
    is covered and no locked version is affected (tests/security/test_audit.py shows it can fail)."""
    assert audit_main([]) == 0
    assert "no known vulnerability" in capsys.readouterr().out


@pytest.mark.processes
def test_ruff_keeps_its_security_rules_on():
    """pyproject selects ALL (S included) and ignores no S rule outside tests; ruff S passes."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "ALL" in config["select"] or "S" in config["select"]
    assert not [code for code in config.get("ignore", []) if re.fullmatch(r"S\d*", code)]
    for path, codes in config.get("per-file-ignores", {}).items():
        if not path.startswith(("tests/", "bench/")):
            assert not [code for code in codes if re.fullmatch(r"S\d*", code)], path
    done = subprocess.run(  # noqa: S603 - ruff from the dev extras
        [str(BIN / "ruff"), "check", "--select", "S", "--no-cache", "worker"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout
