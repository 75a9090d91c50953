"""Lanes on real workers: one account's backlog never holds another account's jobs back, and a
high job never waits behind its own account's bulk ones (scaled down from bench/isolation.py
and bench/priority.py: the limits are 20/s instead of 80/s, the backlogs thousands)."""

from __future__ import annotations

import threading
import time

import pytest

from tests.support.cluster import API_KEY, Sandbox, start_worker, worker_env
from tests.support.processes import wait_for
from worker.sandbox.config import SandboxConfig
from worker.sandbox.server import RunningSandbox
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.schedule import scheduled_by_account

pytestmark = pytest.mark.processes  # real workers and the sandbox in every test

KEY_B = "sk_account_b_lanes_0123456"
LIMIT = 20  # each account's ceiling, per second; the sandbox's own is far above


@pytest.fixture
def sandbox():
    config = SandboxConfig(api_keys=(API_KEY, KEY_B), rate_per_sec=1000, rate_per_min=100_000)
    with RunningSandbox(config) as running:
        admin = Sandbox(running.url)
        yield admin
        admin.close()


def text(body, **options):
    return {"message": {"to": "905320000001", "type": "text", "text": {"body": body}}, **options}


def accepted_at(sandbox):
    """When the Gateway accepted each text body (wall clock)."""
    return {m["body"]["text"]["body"]: m["at"] for m in sandbox.messages()}


def trickle(runtime, count, every_s, **options):
    """``count`` jobs, one every ``every_s``; their (body, enqueued at) in order."""
    sent = []
    for n in range(count):
        body = f"trickle-{n}"
        sent.append((body, time.time()))
        runtime.producer.enqueue_many([text(body, **options)])
        time.sleep(every_s)
    return sent


def latencies(sandbox, trickled):
    def all_in():
        return all(body in accepted_at(sandbox) for body, _ in trickled)

    wait_for(all_in, timeout_s=30, what="every trickled job sent")
    accepted = accepted_at(sandbox)
    return [accepted[body] - at for body, at in trickled]


@pytest.fixture
def two_accounts(redis_url, sandbox, tmp_path):
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(
        f'[accounts.a]\napi_key_env = "A_KEY"\nrate_per_sec = {LIMIT}\n'
        f'[accounts.b]\napi_key_env = "B_KEY"\nrate_per_sec = {LIMIT}\n'
    )
    env = worker_env(redis_url, sandbox.url, accounts_file=str(accounts))
    env.update(A_KEY=API_KEY, B_KEY=KEY_B)
    runtime = Runtime(Settings(broker_url=redis_url, accounts_file=accounts, _env_file=None))
    yield runtime, env
    runtime.close()


def test_one_accounts_backlog_neither_delays_another_nor_fills_the_workers(
    two_accounts, sandbox, tmp_path
):
    """a has 2,000 due at 20/s; b's jobs, 10 a second, still go out within a second of being
    enqueued, a keeps using its limit, and few of a's jobs ever leave its schedule at once."""
    runtime, env = two_accounts
    backlog = 2000
    for start in range(0, backlog, 500):
        runtime.producer.enqueue_many(
            [text(f"a-{n}", account="a") for n in range(start, start + 500)]
        )
    worker = start_worker(env, tmp_path / "worker.log", concurrency=16)
    try:
        time.sleep(1.0)
        out_of_schedule = []
        trickling = threading.Event()

        def sample() -> None:
            # Every 100 ms while b's jobs trickle in: a's jobs out of its schedule at that moment.
            while not trickling.wait(0.1):
                sent_a = sum(1 for m in sandbox.messages() if m["body"]["text"]["body"][:2] == "a-")
                waiting_a = scheduled_by_account(runtime.redis, runtime.keys, time.time())["a"][0]
                out_of_schedule.append(backlog - sent_a - waiting_a)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        begun = time.time()
        trickled = trickle(runtime, 30, 0.1, account="b")
        trickling.set()
        sampler.join(timeout=10)
        took = latencies(sandbox, trickled)
        ended = time.time()
    finally:
        worker.stop()
    assert max(took) <= 1.0, sorted(took)[-5:]
    a_times = [at for body, at in accepted_at(sandbox).items() if body.startswith("a-")]
    a_rate = sum(1 for at in a_times if begun <= at < ended) / (ended - begun)
    assert a_rate >= 0.8 * LIMIT
    # Dispatched or in a call: what its limiter takes in the lookahead, plus a round's worth,
    # throughout the 3 s (about 30 samples), not at one instant.
    assert len(out_of_schedule) >= 20, out_of_schedule
    assert max(out_of_schedule) <= 12, out_of_schedule


def test_high_jobs_go_before_normal_and_bulk_ones_of_their_account(redis_url, sandbox, tmp_path):
    """Due together before the worker starts, bulk first: the high ones are sent first, then
    the normal ones, then the bulk."""
    env = worker_env(redis_url, sandbox.url, rate_per_sec=str(LIMIT))
    runtime = Runtime(Settings(broker_url=redis_url, _env_file=None))
    runtime.producer.enqueue_many([text(f"bulk-{n}", priority="bulk") for n in range(20)])
    runtime.producer.enqueue_many([text(f"normal-{n}") for n in range(5)])
    runtime.producer.enqueue_many([text(f"high-{n}", priority="high") for n in range(5)])
    # One thread: the order under test is the pump's. With several, a first batch goes out a
    # job per message (no call timed yet) and its threads race to claim their slots.
    worker = start_worker(env, tmp_path / "worker.log", concurrency=1)
    try:
        wait_for(lambda: len(sandbox.messages()) == 30, timeout_s=30, what="all 30 sent")
    finally:
        worker.stop()
        runtime.close()
    order = [m["body"]["text"]["body"].split("-")[0] for m in sandbox.messages()]
    assert order == ["high"] * 5 + ["normal"] * 5 + ["bulk"] * 20


def test_a_high_job_overtakes_a_bulk_backlog(redis_url, sandbox, tmp_path):
    """1,000 bulk due at 20/s (50 s of sending): high jobs, five a second, go within 0.75 s,
    while the account keeps sending at its limit."""
    env = worker_env(redis_url, sandbox.url, rate_per_sec=str(LIMIT))
    runtime = Runtime(Settings(broker_url=redis_url, _env_file=None))
    runtime.producer.enqueue_many([text(f"bulk-{n}", priority="bulk") for n in range(1000)])
    worker = start_worker(env, tmp_path / "worker.log", concurrency=16)
    try:
        time.sleep(1.0)
        begun = time.time()
        took = latencies(sandbox, trickle(runtime, 20, 0.2, priority="high"))
        ended = time.time()
    finally:
        worker.stop()
        runtime.close()
    assert max(took) <= 0.75, sorted(took)[-5:]
    sent = [m["at"] for m in sandbox.messages() if begun <= m["at"] < ended]
    assert len(sent) / (ended - begun) >= 0.8 * LIMIT
