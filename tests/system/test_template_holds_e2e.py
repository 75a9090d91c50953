"""Template holds on real processes: a worker sends through the sandbox, the sandbox fails a
paused template's messages (132015) and posts Meta's template reviews to ``msgworker serve``;
held jobs make no Gateway call, a release sends each once, and nothing else is held."""

from __future__ import annotations

import json
import subprocess
from collections import Counter

import pytest

from tests.support.cluster import BIN, Sandbox, start_worker, worker_env
from tests.support.messages import template, text
from tests.support.processes import wait_for
from tests.support.serve import Service, posting_to
from worker.sandbox.server import RunningSandbox
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.states import JobState
from worker.store.templates import TEMPLATE_PAUSED

pytestmark = pytest.mark.e2e

SECRET = "whsec_e2e_templates_0123456789"  # noqa: S105 - a test secret


@pytest.fixture
def loop(redis_url, tmp_path):
    """serve (webhooks on, one account), the sandbox posting to it with spring_sale:en_US
    paused, a threads worker, and the producer side."""
    service = Service(tmp_path, broker_url=redis_url, webhook_secret=SECRET).start()
    config = posting_to(service, SECRET, paused_templates=("spring_sale:en_US",))
    with RunningSandbox(config) as running:
        sandbox = Sandbox(running.url)
        env = worker_env(redis_url, running.url)
        worker = start_worker(env, tmp_path / "worker.log", concurrency=8)
        runtime = Runtime(
            Settings(broker_url=redis_url, api_base_url=running.url, sandbox=True, _env_file=None)
        )
        yield runtime, sandbox, env
        runtime.close()
        worker.stop()
        sandbox.close()
    service.stop()


def recipient(n: int) -> str:
    return f"90532{n:07d}"


def calls_by_recipient(sandbox) -> Counter[str]:
    """Gateway calls accepted per recipient (the sandbox's message log)."""
    return Counter(m["body"]["to"] for m in sandbox.messages())


def states(runtime, ids):
    return [runtime.jobs.get(i).state for i in ids]


def held_by_template(runtime, ids):
    return all(
        (job := runtime.jobs.get(i)).state is JobState.HELD and job.held_reason == TEMPLATE_PAUSED
        for i in ids
    )


def delivered(runtime, ids):
    return all(
        (job := runtime.jobs.get(i)).state is JobState.SENT
        and job.receipt is not None
        and job.receipt.status.value in {"delivered", "read"}
        for i in ids
    )


def msgworker(env, *args):
    done = subprocess.run(  # noqa: S603 - our own command
        [str(BIN / "msgworker"), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_a_failed_132015_holds_the_template_and_reinstated_sends_each_once(loop):
    """The first spring_sale fails 132015: it and the five enqueued after are held with no
    Gateway call; other templates, languages and free-form messages go; Meta's REINSTATED sends
    the six once each."""
    runtime, sandbox, env = loop
    first = runtime.producer.enqueue(template(to=recipient(0)))
    wait_for(lambda: held_by_template(runtime, [first]), timeout_s=30, what="the first held")
    held = runtime.producer.enqueue_many([template(to=recipient(n)) for n in range(1, 6)])
    others = runtime.producer.enqueue_many(
        [template("welcome", to=recipient(10 + n)) for n in range(3)]
        + [template(language="tr", to=recipient(20 + n)) for n in range(2)]
        + [text(n, to=recipient(30 + n)) for n in range(3)]
    )
    wait_for(lambda: delivered(runtime, others), timeout_s=30, what="the others delivered")
    wait_for(lambda: held_by_template(runtime, held), timeout_s=30, what="the five held")
    calls = calls_by_recipient(sandbox)
    assert calls[recipient(0)] == 1
    assert not any(calls[recipient(n)] for n in range(1, 6))  # no Gateway call while held
    assert all(calls[recipient(n)] == 1 for n in [10, 11, 12, 20, 21, 30, 31, 32])
    view = json.loads(msgworker(env, "status", "--json"))["accounts"]["default"]
    [hold] = view["templates_held"]
    assert (hold["name"], hold["language"], hold["reason"], hold["jobs"]) == (
        "spring_sale",
        "en_US",
        "paused",
        6,
    )

    sandbox.post(
        "/sandbox/template_event",
        {"event": "REINSTATED", "name": "spring_sale", "language": "en_US"},
    )
    everyone = [first, *held]
    wait_for(lambda: delivered(runtime, everyone), timeout_s=30, what="the six delivered")
    calls = calls_by_recipient(sandbox)
    assert [calls[recipient(n)] for n in range(6)] == [2, 1, 1, 1, 1, 1]  # each sent once more
    assert (
        json.loads(msgworker(env, "status", "--json"))["accounts"]["default"]["templates_held"]
        == []
    )


def test_a_paused_review_holds_and_the_operators_release_sends_each_once(loop):
    """PAUSED for welcome:en: its jobs wait without a call while a text goes; fixed in
    WhatsApp Manager (the sandbox no longer fails it), `template release` sends each once."""
    runtime, sandbox, env = loop
    sandbox.post(
        "/sandbox/template_event", {"event": "PAUSED", "name": "welcome", "language": "en"}
    )
    wait_for(lambda: runtime.templates.held("default"), timeout_s=30, what="the review's hold")
    held = runtime.producer.enqueue_many(
        [template("welcome", "en", to=recipient(n)) for n in range(4)]
    )
    free = runtime.producer.enqueue(text(1, to=recipient(9)))
    wait_for(lambda: delivered(runtime, [free]), timeout_s=30, what="the text delivered")
    wait_for(lambda: held_by_template(runtime, held), timeout_s=30, what="the four held")
    assert not any(calls_by_recipient(sandbox)[recipient(n)] for n in range(4))

    sandbox.configure(paused_templates=[])
    out = msgworker(env, "template", "release", "welcome", "--lang", "en")
    assert "4 held job(s)" in out
    wait_for(lambda: delivered(runtime, held), timeout_s=30, what="the four delivered")
    calls = calls_by_recipient(sandbox)
    assert [calls[recipient(n)] for n in range(4)] == [1, 1, 1, 1]
    assert runtime.templates.held("default") == []
