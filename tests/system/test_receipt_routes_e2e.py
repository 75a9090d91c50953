"""WhatsApp's answers about one recipient or the sender, on real processes: a worker sends
through the sandbox, whose Meta fails chosen recipients with chosen codes and posts the failed
statuses to ``msgworker serve``; each job ends as the ``[delivery]`` table routes its code."""

from __future__ import annotations

import itertools
import json
import subprocess
import time

import httpx
import pytest

from tests.support.cluster import BIN, Sandbox, start_worker, worker_env
from tests.support.processes import free_port, wait_for
from tests.support.serve import Service, posting_to
from worker.sandbox.server import RunningSandbox
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.states import JobState

pytestmark = pytest.mark.e2e

SECRET = "whsec_e2e_0123456789abcdef"  # noqa: S105 - a test secret
OUTSIDE_WINDOW, MARKETING, OPTED_OUT = "905550000047", "905550000049", "905550000050"
SPAM, THROUGHPUT = "905550000048", "905550000429"
PAIRED = "905550000056"
STANDING_PAUSE_S = 12
# The sandbox's Meta paces a pair at 1 s; the service sends a 131056 job again after 2 s, past it.
META_PAIR_INTERVAL_S, PAIR_INTERVAL_S = 1.0, 2.0


def text(n: int, to: str) -> dict:
    return {"to": to, "type": "text", "text": {"body": f"message {n}"}}


@pytest.fixture
def loop(redis_url, tmp_path):
    """serve (webhooks on, the delays short), the sandbox failing chosen recipients, a worker
    whose /metrics answers, and the producer side; MAX_ATTEMPTS 4 on both."""
    service = Service(
        tmp_path,
        broker_url=redis_url,
        webhook_secret=SECRET,
        max_attempts="4",
        marketing_retry_s="1",
        standing_pause_s=str(STANDING_PAUSE_S),
        pair_interval_s=str(PAIR_INTERVAL_S),
    ).start()
    config = posting_to(
        service,
        SECRET,
        recipient_errors={
            OUTSIDE_WINDOW: 131047,
            MARKETING: 131049,
            OPTED_OUT: 131050,
            SPAM: 131048,
            THROUGHPUT: 130429,
        },
        pair_interval_s=META_PAIR_INTERVAL_S,
    )
    with RunningSandbox(config) as running:
        sandbox = Sandbox(running.url)
        metrics_port = free_port()
        env = worker_env(redis_url, running.url, metrics_port=str(metrics_port))
        worker = start_worker(env, tmp_path / "worker.log", concurrency=8)
        runtime = Runtime(
            Settings(broker_url=redis_url, api_base_url=running.url, sandbox=True, _env_file=None)
        )
        yield runtime, sandbox, env, service, metrics_port
        runtime.close()
        worker.stop()
        sandbox.close()
    service.stop()


def msgworker(env, *args):
    done = subprocess.run(  # noqa: S603 - our own command
        [str(BIN / "msgworker"), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def parked(runtime, job_id):
    job = runtime.jobs.get(job_id)
    return job if job and job.state is JobState.PARKED else None


def failures(job):
    return [
        (e["code"], e["action"], e["delay_s"])
        for e in job.history
        if e["event"] == "delivery_failed"
    ]


def sends(job):
    """When each of the job's Gateway calls that sent it was answered."""
    return [e["at"] for e in job.history if e["event"] == "attempt" and e["action"] == "sent"]


def counted(loop, code):
    """The failures counted under this code (its own label, not OTHER): by serve, and by the
    worker for a status that came before its send was recorded, as the dashboard sums them."""
    *_, service, metrics_port = loop
    series = f'msgworker_delivery_failures_total{{account="default",code="{code}"}} '
    total = 0.0
    for url in (f"{service.url}/metrics", f"http://127.0.0.1:{metrics_port}/metrics"):
        for line in httpx.get(url).text.splitlines():
            if line.startswith(series):
                total += float(line.removeprefix(series))
    return total


def test_outside_window_and_opted_out_park_and_a_replay_by_code_leaves_opted_out(loop):
    """131047 parks outside_window, 131050 opted_out, each counted under its code; `dlq replay
    --code` leaves the opted-out job unless --include-opted-out, and `--id` sends it."""
    runtime, sandbox, env, _, _ = loop
    window = runtime.producer.enqueue(text(1, OUTSIDE_WINDOW))
    opted = [runtime.producer.enqueue(text(n, OPTED_OUT)) for n in (2, 3)]
    wait_for(lambda: all(parked(runtime, i) for i in (window, *opted)), timeout_s=30, what="parked")
    assert (parked(runtime, window).parked_reason, parked(runtime, window).last_code) == (
        "outside_window",
        "WA_131047",
    )
    assert {parked(runtime, i).parked_reason for i in opted} == {"opted_out"}
    assert failures(parked(runtime, window)) == [("WA_131047", "park:outside_window", None)]
    assert counted(loop, "WA_131047") == 1
    skipped = json.loads(msgworker(env, "dlq", "replay", "--code", "WA_131050", "--json"))
    assert (skipped["replayed"], skipped["skipped_opted_out"]) == (0, 2)
    assert all(parked(runtime, i) for i in opted)
    msgworker(env, "dlq", "replay", "--id", opted[0], "--json")
    wait_for(
        lambda: sum(m["to"] == OPTED_OUT for m in sandbox.messages()) == 3,
        timeout_s=30,
        what="the one named sent once more",
    )
    wait_for(lambda: parked(runtime, opted[0]), timeout_s=30, what="parked again")
    included = msgworker(
        env, "dlq", "replay", "--code", "WA_131050", "--include-opted-out", "--json"
    )
    assert json.loads(included)["replayed"] == 2
    wait_for(
        lambda: sum(m["to"] == OPTED_OUT for m in sandbox.messages()) == 5,
        timeout_s=30,
        what="both sent once more",
    )


def test_the_marketing_limit_retries_later_each_time_then_parks_at_max_attempts(loop):
    """131049 with MARKETING_RETRY_S 1 and MAX_ATTEMPTS 4: sent again after 1 s, 2 s, 4 s, then
    parked retries_exhausted with code WA_131049; four sends in all."""
    runtime, sandbox, _, _, _ = loop
    job_id = runtime.producer.enqueue(text(1, MARKETING))
    job = wait_for(lambda: parked(runtime, job_id), timeout_s=60, what="parked at last")
    assert (job.parked_reason, job.last_code, job.attempts) == (
        "retries_exhausted",
        "WA_131049",
        4,
    )
    assert failures(job) == [
        ("WA_131049", "reschedule", 1),
        ("WA_131049", "reschedule", 2),
        ("WA_131049", "reschedule", 4),
        ("WA_131049", "park:retries_exhausted", None),
    ]
    sent = sends(job)
    assert len(sent) == 4
    # Each send waited at least its delay after the one before: the schedule kept the delays.
    assert all(b - a >= d for (a, b), d in zip(itertools.pairwise(sent), (1, 2, 4), strict=True))
    assert sum(m["to"] == MARKETING for m in sandbox.messages()) == 4
    assert counted(loop, "WA_131049") == 4


def test_a_pair_rate_limit_sends_the_job_again_after_the_pair_interval(loop):
    """Two jobs to one number at once: Meta fails the second with 131056; it is sent again
    PAIR_INTERVAL_S later without using an attempt, and delivered."""
    runtime, *_ = loop
    ids = [runtime.producer.enqueue(text(n, PAIRED)) for n in (1, 2)]

    def delivered(job_id):
        job = runtime.jobs.get(job_id)
        return job.receipt is not None and job.receipt.status.value in {"delivered", "read"}

    wait_for(lambda: all(delivered(i) for i in ids), timeout_s=30, what="both delivered")
    jobs = [runtime.jobs.get(i) for i in ids]
    [paced] = [job for job in jobs if failures(job)]
    assert failures(paced) == [("WA_131056", "reschedule", PAIR_INTERVAL_S)]
    assert (paced.state, paced.attempts, paced.reschedules) == (JobState.SENT, 1, 1)
    first, again = sends(paced)
    assert again - first >= PAIR_INTERVAL_S
    assert counted(loop, "WA_131056") == 1


def test_the_senders_standing_pauses_the_bulk_lane_only(loop):
    """131048, then 130429: each job parked undelivered; the account's bulk lane pauses for
    STANDING_PAUSE_S (status --json says until when, the worker's gauge says 1) while a normal
    job goes out; the bulk job goes once the pause is over."""
    runtime, sandbox, env, _, metrics_port = loop
    spam = runtime.producer.enqueue(text(1, SPAM))
    wait_for(lambda: parked(runtime, spam), timeout_s=30, what="131048 parked")
    throughput = runtime.producer.enqueue(text(2, THROUGHPUT))
    wait_for(lambda: parked(runtime, throughput), timeout_s=30, what="130429 parked")
    for job_id, code in ((spam, "WA_131048"), (throughput, "WA_130429")):
        job = parked(runtime, job_id)
        assert (job.parked_reason, job.last_code) == ("undelivered", code)
        assert failures(job) == [(code, "pause_bulk", None)]
        assert counted(loop, code) == 1
    status = json.loads(msgworker(env, "status", "--json"))
    until = status["accounts"]["default"]["bulk_paused_until"]
    assert until is not None
    bulk = runtime.producer.enqueue(text(3, "905321234567"), priority="bulk")
    normal = runtime.producer.enqueue(text(4, "905321234568"))
    wait_for(
        lambda: runtime.jobs.get(normal).state is JobState.SENT, timeout_s=10, what="normal sent"
    )
    gauge = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
    assert 'msgworker_bulk_paused{account="default"} 1.0' in gauge
    paused_until = runtime.switches.bulk_paused_until("default")
    assert paused_until is not None
    assert paused_until - time.time() > 1, "the pause must still run for the check below"
    assert runtime.jobs.get(bulk).state is not JobState.SENT
    assert all(m["to"] != "905321234567" for m in sandbox.messages())
    wait_for(
        lambda: runtime.jobs.get(bulk).state is JobState.SENT,
        timeout_s=STANDING_PAUSE_S + 10,
        what="bulk sent after the pause",
    )
    assert sends(runtime.jobs.get(bulk))[0] >= paused_until
