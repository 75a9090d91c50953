"""The producer as an app sees it: typed models, explicit options, the asyncio twins, no Celery
on import, the msgworker alias beside an app's own ``worker`` package, a type-checked app."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import RedisServer, free_port
from worker.errors import InvalidMessage, Unavailable
from worker.models import Text, TextMessage
from worker.producer_async import AsyncJobStore, AsyncProducer
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.connect import connect_async_fail_fast
from worker.store.keys import Keys

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_APP = Path(__file__).resolve().parent / "sample_app"
MESSAGE = {"to": "905321234567", "type": "text", "text": {"body": "hello"}}
TIMEOUT_S = 1.0


def _env(redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGWORKER_")}
    env.update(MSGWORKER_BROKER_URL=redis_url, MSGWORKER_REDIS_TIMEOUT_S=str(TIMEOUT_S))
    env.pop("PYTHONPATH", None)
    return env


def _python(code: str, *, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _async_producer(url: str) -> tuple[AsyncProducer, object]:
    client = connect_async_fail_fast(url, timeout_s=TIMEOUT_S)
    producer = AsyncProducer(
        AsyncJobStore(client, Keys("msgworker:")),
        accounts=frozenset({"default"}),
        redis_timeout_s=TIMEOUT_S,
    )
    return producer, client


def test_a_message_model_and_its_dict_enqueue_the_same_payload(redis_url, redis_client):
    """TextMessage(...) and the dict shape are one thing; priority is stored with the job."""
    runtime = Runtime(Settings(broker_url=redis_url, _env_file=None))
    try:
        by_model = runtime.producer.enqueue(
            TextMessage(to="+90 532 123 45 67", text=Text(body="hello")), priority="high"
        )
        by_dict = runtime.producer.enqueue(MESSAGE)
    finally:
        runtime.close()
    model_record = redis_client.hgetall(f"msgworker:job:{by_model}")
    dict_record = redis_client.hgetall(f"msgworker:job:{by_dict}")
    assert json.loads(model_record["message"]) == json.loads(dict_record["message"])
    assert (model_record["priority"], dict_record["priority"]) == ("high", "normal")


def test_an_unknown_priority_is_refused_naming_the_field(redis_url, redis_client):
    runtime = Runtime(Settings(broker_url=redis_url, _env_file=None))
    try:
        with pytest.raises(InvalidMessage) as refused:
            runtime.producer.enqueue(MESSAGE, priority="urgent")  # type: ignore[arg-type]
    finally:
        runtime.close()
    assert [p.field for p in refused.value.problems] == ["priority"]
    assert redis_client.dbsize() == 0


def test_enqueue_async_writes_like_enqueue_and_knows_duplicates(redis_url, redis_client):
    """Same script, same validation: a known key returns the first id; a bad item writes nothing."""

    async def scenario():
        producer, client = _async_producer(redis_url)
        try:
            first = await producer.enqueue(MESSAGE, idempotency_key="k")
            again = await producer.enqueue(MESSAGE, idempotency_key="k")
            many = await producer.enqueue_many([MESSAGE, {"message": MESSAGE, "priority": "bulk"}])
            with pytest.raises(InvalidMessage) as refused:
                await producer.enqueue_many([MESSAGE, {**MESSAGE, "to": "x"}])
            return first, again, many, refused.value
        finally:
            await client.aclose()

    first, again, many, refused = asyncio.run(scenario())
    assert first == again
    assert len(many) == 2
    assert [p.field for p in refused.problems] == ["[1].message.to"]
    assert redis_client.hget(f"msgworker:job:{many[1]}", "priority") == "bulk"
    assert len([k for k in redis_client.keys("msgworker:job:*") if not k.endswith(":history")]) == 3


@pytest.mark.processes
def test_enqueue_async_raises_unavailable_within_the_timeout(tmp_path):
    """Nobody listening, or a frozen Redis: Unavailable in under REDIS_TIMEOUT_S + 1 s."""
    server = RedisServer(tmp_path)
    server.start()

    async def attempt(url):
        producer, client = _async_producer(url)
        started = time.monotonic()
        try:
            with pytest.raises(Unavailable):
                await producer.enqueue(MESSAGE)
        finally:
            await client.aclose()
        return time.monotonic() - started

    try:
        assert asyncio.run(attempt(f"redis://127.0.0.1:{free_port()}/0")) < TIMEOUT_S + 1
        assert server.pid is not None
        os.kill(server.pid, signal.SIGSTOP)
        assert asyncio.run(attempt(server.url)) < TIMEOUT_S + 1
    finally:
        if server.pid is not None:
            os.kill(server.pid, signal.SIGCONT)
        server.stop()


@pytest.mark.processes
def test_the_public_functions_work_in_a_fresh_process_without_celery(redis_url, tmp_path):
    """import worker / msgworker, enqueue and enqueue_async: Celery and kombu are never imported."""
    code = """
import asyncio, sys
import worker
from worker import enqueue, enqueue_many, enqueue_async, enqueue_many_async, TextMessage, Text
import msgworker
a = enqueue(TextMessage(to="905321234567", text=Text(body="hi")))
b = enqueue_many([{"to": "905321234567", "type": "text", "text": {"body": "hi"}}])
c = asyncio.run(enqueue_async({"to": "905321234567", "type": "text", "text": {"body": "hi"}}))
d = asyncio.run(msgworker.enqueue_many_async([TextMessage(to="905321234567", text=Text(body="x"))]))
heavy = sorted(m for m in ("celery", "kombu", "billiard", "aiohttp", "fastapi", "prometheus_client") if m in sys.modules)
print(len({a, *b, c, *d}), heavy)
"""
    assert _python(code, cwd=tmp_path, env=_env(redis_url)).split() == ["4", "[]"]


@pytest.mark.processes
@pytest.mark.parametrize("imported_first", [True, False])
def test_an_app_with_its_own_worker_package_uses_msgworker(
    redis_url, redis_client, tmp_path, imported_first
):
    """The app's ``worker`` stays the app's, before or after ``import msgworker``; msgworker's
    enqueue and enqueue_async write real jobs."""
    package = tmp_path / "worker"
    package.mkdir()
    (package / "__init__.py").write_text('OWNER = "app"\n')
    (package / "tasks.py").write_text('def run():\n    return "app task"\n')
    prelude = "import worker, worker.tasks\n" if imported_first else ""
    code = (
        prelude
        + """
import asyncio
from msgworker import enqueue, enqueue_async, TextMessage, Text
import worker, worker.tasks
assert worker.OWNER == "app" and worker.tasks.run() == "app task"
print(enqueue(TextMessage(to="905321234567", text=Text(body="hi"))))
print(asyncio.run(enqueue_async({"to": "905321234567", "type": "text", "text": {"body": "x"}})))
"""
    )
    env = {**_env(redis_url), "PYTHONPATH": str(tmp_path)}
    ids = _python(code, cwd=tmp_path, env=env).split()
    assert len(ids) == 2
    for job_id in ids:
        assert redis_client.hget(f"msgworker:job:{job_id}", "state") == "queued"


@pytest.mark.processes
def test_the_sample_app_type_checks_with_mypy_strict():
    """A user's app with the public models and functions passes mypy --strict (py.typed ships)."""
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(SAMPLE_APP / "app.py")],
        cwd=SAMPLE_APP,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.processes
def test_mypy_catches_a_wrong_option_in_an_app(tmp_path):
    """The options are typed: a misspelt keyword or a wrong type fails the app's type check."""
    app = tmp_path / "bad.py"
    app.write_text(
        "from msgworker import enqueue, TextMessage, Text\n"
        'enqueue(TextMessage(to="1", text=Text(body="x")), priorty="high")\n'
        'enqueue({"to": "1"}, ttl_s="soon")\n'
    )
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(app)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1
    assert 'Unexpected keyword argument "priorty"' in done.stdout
    assert '"ttl_s"' in done.stdout
