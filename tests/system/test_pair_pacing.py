"""Pair pacing on real processes: a worker sends through the sandbox, which plays WhatsApp's pair
rate limit (131056 for a recipient sent to faster than its interval), and the account's other
recipients go out at its full rate meanwhile."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.cluster import API_KEY, Sandbox, start_worker, worker_env
from tests.support.processes import wait_for
from tests.support.serve import Service, posting_to
from worker.sandbox.server import RunningSandbox, SandboxConfig
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.ratelimit import SEC_WINDOW_MS
from worker.store.states import JobState

pytestmark = [pytest.mark.e2e, pytest.mark.quiet]

# Shorter than WhatsApp's 6 s, and the sandbox's the same: the test's time is the pair's.
INTERVAL_S = 2.0
RATE_PER_SEC = 10
# The limiter's slots are evenly spaced at most this far apart at the account's rate (the start
# margin's window; a worker that has measured its calls keeps a narrower one).
GAP_S = SEC_WINDOW_MS / 1000 / RATE_PER_SEC
# A send may reach the sandbox this long after its slot (the call, a busy machine).
SLOT_LATE_S = 1.0
PAIRED = "905320000001"
REPEATS = 4
OTHERS = [f"9053310{n:05d}" for n in range(40)]
PAIR_RATE_LIMIT = 131056
WHATSAPP_INTERVAL_S = 6.0
SECRET = "whsec_pairs_0123456789abcdef"  # noqa: S105 - a test secret


def text(to: str, n: int) -> dict[str, Any]:
    return {"to": to, "type": "text", "text": {"body": f"pair test {n}"}}


@pytest.fixture
def sandbox(redis_url) -> Iterator[Sandbox]:
    """The sandbox: one key a little above RATE_PER_SEC, pair pacing of INTERVAL_S. The margin
    keeps a send that a busy machine delays onto the next one's heels from meeting a 429 (and a
    second's cooldown): what is measured here is the pairs' waits, not the limiter's margin."""
    config = SandboxConfig(
        api_keys=(API_KEY,),
        rate_per_sec=RATE_PER_SEC + 2,
        rate_per_min=100 * RATE_PER_SEC,
        pair_interval_s=INTERVAL_S,
    )
    with RunningSandbox(config) as running:
        admin = Sandbox(running.url)
        yield admin
        admin.close()


def send_all(redis_url: str, sandbox: Sandbox, tmp_path, pair_interval_s: float) -> list[dict]:
    """4 jobs to one number, then 40 to others, enqueued in one batch, sent by a worker paced
    with ``pair_interval_s``; the sandbox's log of the 44 accepted messages."""
    env = worker_env(
        redis_url,
        sandbox.url,
        rate_per_sec=str(RATE_PER_SEC),
        pair_interval_s=str(pair_interval_s),
    )
    worker = start_worker(env, tmp_path / "worker.log", concurrency=8)
    runtime = Runtime(Settings(broker_url=redis_url, _env_file=None))
    try:
        items = [text(PAIRED, n) for n in range(REPEATS)]
        items += [text(to, REPEATS + n) for n, to in enumerate(OTHERS)]
        runtime.producer.enqueue_many(items)
        total = REPEATS + len(OTHERS)
        wait_for(
            lambda: sandbox.stats()["accepted"] == total,
            timeout_s=30,
            interval_s=0.2,
            what=f"{total} messages accepted",
        )
        return sandbox.messages()
    finally:
        runtime.close()
        worker.stop()


def at(message: dict) -> float:
    """When the sandbox accepted the message (Unix seconds)."""
    return float(message["at"])


def test_a_paced_pair_waits_while_the_other_recipients_go_at_the_full_rate(
    redis_url, sandbox, tmp_path
):
    """Paced: the 4 messages to one number are accepted >= the interval apart and none fails
    131056, while each of the 40 others is accepted within a second of its slot: the account's
    k-th slot is k gaps (the window over the rate) after its first send."""
    log = send_all(redis_url, sandbox, tmp_path, INTERVAL_S)
    first = min(at(m) for m in log)
    paired = sorted(at(m) for m in log if m["to"] == PAIRED)
    apart = [later - earlier for earlier, later in itertools.pairwise(paired)]
    assert min(apart) >= INTERVAL_S, apart
    assert [m["meta_error"] for m in log] == [None] * len(log)
    others = sorted(at(m) for m in log if m["to"] != PAIRED)
    late = [round(t - (first + k * GAP_S), 3) for k, t in enumerate(others)]
    assert max(late) <= SLOT_LATE_S, late


def test_unpaced_three_of_four_fail_131056_and_are_sent_again_none_parked(redis_url, tmp_path):
    """Pacing off: the 4 messages to one number go out together and WhatsApp (the sandbox, at
    its own 6 s) fails 3 of them with 131056, by real webhooks to ``msgworker serve``; each is
    rescheduled (no attempt used) until delivered, none parked; the 40 others are delivered
    first time."""
    service = Service(
        tmp_path, broker_url=redis_url, webhook_secret=SECRET, pair_interval_s="0"
    ).start()
    config = posting_to(
        service,
        SECRET,
        rate_per_sec=RATE_PER_SEC + 2,
        rate_per_min=100 * RATE_PER_SEC,
        pair_interval_s=WHATSAPP_INTERVAL_S,
    )
    env_runtime = None
    items = [text(PAIRED, n) for n in range(REPEATS)]
    items += [text(to, REPEATS + n) for n, to in enumerate(OTHERS)]
    try:
        with RunningSandbox(config) as running:
            sandbox = Sandbox(running.url)
            env = worker_env(
                redis_url, running.url, rate_per_sec=str(RATE_PER_SEC), pair_interval_s="0"
            )
            worker = start_worker(env, tmp_path / "worker.log", concurrency=8)
            env_runtime = Runtime(Settings(broker_url=redis_url, _env_file=None))
            try:
                ids = env_runtime.producer.enqueue_many(items)

                def delivered(job_id: str) -> bool:
                    receipt = env_runtime.jobs.get(job_id).receipt
                    return receipt is not None and receipt.status.value in {"delivered", "read"}

                wait_for(
                    lambda: all(delivered(i) for i in ids),
                    timeout_s=60,
                    interval_s=0.5,
                    what="every job delivered",
                )
                log = sandbox.messages()
            finally:
                worker.stop()
                sandbox.close()
        first_try: dict[str, int | None] = {}  # by the text: each job's first answer
        for message in sorted(log, key=at):
            first_try.setdefault(message["body"]["text"]["body"], message["meta_error"])
        texts = [item["text"]["body"] for item in items]
        paired = sorted((first_try[t] for t in texts[:REPEATS]), key=str)
        assert paired == [PAIR_RATE_LIMIT] * 3 + [None]
        assert {first_try[t] for t in texts[REPEATS:]} == {None}
        jobs = [env_runtime.jobs.get(i) for i in ids[:REPEATS]]
        assert {job.state for job in jobs} == {JobState.SENT}
        retried = [job for job in jobs if job.reschedules]
        assert len(retried) == 3
        assert all(job.attempts == 1 for job in jobs)
        assert env_runtime.dead_letters.counts() == {}
    finally:
        if env_runtime is not None:
            env_runtime.close()
        service.stop()
