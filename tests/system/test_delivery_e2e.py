"""The whole loop on real processes: a worker sends through the sandbox, the sandbox posts
status webhooks to ``msgworker serve`` (uvicorn), and every job shows what WhatsApp did."""

from __future__ import annotations

import json
import os
import subprocess
import time

import httpx
import pytest

from tests.support.cluster import BIN, Sandbox, start_worker, worker_env
from tests.support.processes import wait_for
from tests.support.serve import Service, posting_to
from worker.sandbox.server import RunningSandbox
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.states import JobState

pytestmark = pytest.mark.e2e

SECRET = "whsec_e2e_0123456789abcdef"  # noqa: S105 - a test secret
FAILING = "905329999999"
# 1,000 in a full run; CI may set fewer to keep its time modest (the bench runs 1,000 too).
SENDS = int(os.environ.get("MSGWORKER_TEST_DELIVERY_SENDS", "1000"))


def text(n: int, to: str = "905321234567") -> dict:
    return {"to": to, "type": "text", "text": {"body": f"message {n}"}}


@pytest.fixture
def loop(redis_url, tmp_path):
    """serve (webhooks on), the sandbox posting to it, a threads worker, and the producer side."""
    service = Service(tmp_path, broker_url=redis_url, webhook_secret=SECRET).start()
    config = posting_to(
        service,
        SECRET,
        webhook_delivered_s=0.2,
        webhook_read_s=0.5,
        failing_recipients=(FAILING,),
    )
    with RunningSandbox(config) as running:
        sandbox = Sandbox(running.url)
        env = worker_env(redis_url, running.url)
        worker = start_worker(env, tmp_path / "worker.log", concurrency=16)
        runtime = Runtime(
            Settings(broker_url=redis_url, api_base_url=running.url, sandbox=True, _env_file=None)
        )
        yield runtime, sandbox, env, service
        runtime.close()
        worker.stop()
        sandbox.close()
    service.stop()


def deliveries(runtime, ids):
    jobs = [runtime.jobs.get(job_id) for job_id in ids]
    return [job.receipt.status if job and job.receipt else None for job in jobs]


def test_every_sent_job_is_delivered_then_read(loop):
    """N sends: every job goes sent → delivered → read; the payload is gone once read."""
    runtime, sandbox, _, service = loop
    started = time.monotonic()
    ids = runtime.producer.enqueue_many([text(n) for n in range(SENDS)])
    wait_for(
        lambda: deliveries(runtime, ids).count("read") == SENDS,
        timeout_s=60 + SENDS / 10,
        interval_s=0.5,
        what=f"{SENDS} jobs read",
    )
    elapsed = time.monotonic() - started
    print(f"{SENDS} sends delivered and read in {elapsed:.1f}s")  # noqa: T201
    for job in (runtime.jobs.get(i) for i in ids):
        names = [e["event"] for e in job.history]
        assert job.state is JobState.SENT
        assert names.count("read") == 1
        assert names.count("delivered") <= 1
        assert job.message == {}
    assert sandbox.stats()["accepted"] == SENDS
    posted = sandbox._http.get("/sandbox/webhooks").json()
    assert posted.get("posted") == 3 * SENDS
    assert "given_up" not in posted
    metrics = httpx.get(f"{service.url}/metrics").text
    assert (
        f'msgworker_delivery_statuses_total{{account="default",status="read"}} {SENDS}.0' in metrics
    )
    assert "msgworker_delivery_seconds_count" in metrics


def test_failed_recipients_are_parked_and_a_replay_sends_them_once_more(loop):
    """131026 parks WA_131026 (listed by `dlq list`); a replay sends each exactly once more."""
    runtime, sandbox, env, _ = loop
    ids = runtime.producer.enqueue_many([text(n, FAILING) for n in range(3)])
    ok = runtime.producer.enqueue(text(99))
    wait_for(
        lambda: all((j := runtime.jobs.get(i)) and j.state is JobState.PARKED for i in ids),
        timeout_s=30,
        what="failed recipients parked",
    )
    for job_id in ids:
        job = runtime.jobs.get(job_id)
        assert (job.last_code, job.parked_reason) == ("WA_131026", "undelivered")
    listed = subprocess.run(  # noqa: S603
        [str(BIN / "msgworker"), "dlq", "list", "--code", "wa_131026", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(r["id"] for r in records) == sorted(ids)
    assert all(r["reason"] == "undelivered" and r["message"]["to"] == FAILING for r in records)
    subprocess.run(  # noqa: S603
        [str(BIN / "msgworker"), "dlq", "replay", "--code", "WA_131026", "--rate", "50"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wait_for(
        lambda: sum(m["to"] == FAILING for m in sandbox.messages()) == 6,
        timeout_s=30,
        what="the three sent once more",
    )
    wait_for(
        lambda: all(runtime.jobs.get(i).state is JobState.PARKED for i in ids),
        timeout_s=30,
        what="parked again (the recipient still fails)",
    )
    assert sum(m["to"] == FAILING for m in sandbox.messages()) == 6
    wait_for(lambda: deliveries(runtime, [ok]) == ["read"], timeout_s=30, what="ok read")
