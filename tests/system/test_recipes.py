"""The recipes, run as written: each code block after a ``<!-- recipe: NAME -->`` line is taken
from docs/sending.md and run against a real Redis (and a real ``msgworker serve``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.serve import TOKEN, Service

pytestmark = pytest.mark.processes  # every test here runs real child processes

ROOT = Path(__file__).resolve().parents[2]
RECIPES = (ROOT / "docs" / "sending.md").read_text(encoding="utf-8")


def recipe(name: str) -> str:
    found = re.search(rf"<!-- recipe: {name} -->\n```\w+\n(.*?)```", RECIPES, re.DOTALL)
    assert found, f"docs/sending.md has no recipe {name}"
    return found.group(1)


def _env(redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGWORKER_")}
    env["MSGWORKER_BROKER_URL"] = redis_url
    return env


def _python(tmp_path: Path, code: str, redis_url: str) -> str:
    script = tmp_path / "run.py"
    script.write_text(code)
    done = subprocess.run(  # noqa: S603
        [sys.executable, str(script)], cwd=tmp_path, env=_env(redis_url),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _jobs(redis_client) -> list[str]:
    return [k for k in redis_client.keys("msgworker:job:*") if not k.endswith(":history")]


def test_django_enqueues_on_commit_only(redis_url, redis_client, tmp_path):
    """Nothing before the commit, one job after it, none for a rolled-back transaction."""
    harness = f"""
import django
from django.conf import settings
settings.configure(
    DATABASES={{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {str(tmp_path / "db.sqlite3")!r}}}}},
    INSTALLED_APPS=[],
)
django.setup()
import redis
from django.db import transaction
{recipe("django")}
client = redis.Redis.from_url({redis_url!r})
with transaction.atomic():
    confirm_order(1, "+905321234567")
    inside = client.dbsize()
try:
    with transaction.atomic():
        confirm_order(2, "+905321234567")
        raise RuntimeError("payment failed")
except RuntimeError:
    pass
print(inside)
"""
    assert _python(tmp_path, harness, redis_url).split() == ["0"]
    [job] = _jobs(redis_client)
    assert json.loads(redis_client.hget(job, "message"))["text"]["body"] == "Order 1 confirmed"
    assert redis_client.hget(job, "key") == "order-1"


def test_fastapi_handler_awaits_enqueue_async(redis_url, redis_client, tmp_path):
    harness = (
        recipe("fastapi")
        + """
from fastapi.testclient import TestClient
with TestClient(app) as client:
    for _ in range(2):
        answer = client.post("/signup", params={"phone": "905321234567"})
        assert answer.status_code == 200, answer.text
        print(answer.json()["job_id"])
"""
    )
    ids = _python(tmp_path, harness, redis_url).split()
    assert len(set(ids)) == 2
    assert len(_jobs(redis_client)) == 2


def test_flask_handler_enqueues(redis_url, redis_client, tmp_path):
    harness = (
        recipe("flask")
        + """
client = app.test_client()
answer = client.post("/signup", data={"phone": "905321234567"})
assert answer.status_code == 200, answer.data
print(answer.get_json()["job_id"])
"""
    )
    (job_id,) = _python(tmp_path, harness, redis_url).split()
    assert redis_client.hget(f"msgworker:job:{job_id}", "state") == "queued"


@pytest.fixture
def service(redis_url, tmp_path):
    server = Service(tmp_path, broker_url=redis_url, ingest_tokens=TOKEN).start()
    yield server
    server.stop()


def needed(name: str, package: str) -> str:
    """A tool the recipes need: CI installs it (./run test), so it is never skipped."""
    found = shutil.which(name)
    assert found, f"{name} is missing (Debian: apt-get install {package}; ./run test does it)"
    return found


def test_curl_posts_a_message(service, redis_client):
    needed("curl", "curl")
    env = {**os.environ, "SERVE_URL": service.url, "SERVE_TOKEN": TOKEN}
    done = subprocess.run(  # noqa: S603
        [shutil.which("bash") or "/bin/bash", "-c", recipe("curl")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    job_id = json.loads(done.stdout)["id"]
    assert redis_client.hget(f"msgworker:job:{job_id}", "key") == "order-42"


def test_node_fetch_posts_a_message(service, redis_client, tmp_path):
    node = needed("node", "nodejs")
    script = tmp_path / "send.mjs"
    script.write_text(recipe("node"))
    env = {**os.environ, "SERVE_URL": service.url, "SERVE_TOKEN": TOKEN}
    done = subprocess.run(  # noqa: S603
        [node, str(script)], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    status, job_id = done.stdout.split()
    assert status == "202"
    assert redis_client.hget(f"msgworker:job:{job_id}", "key") == "order-43"
