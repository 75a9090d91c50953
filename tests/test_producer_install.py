"""A producer-only install: the wheel without extras in a fresh virtualenv enqueues into a real
Redis, never imports Celery, stays small (its size is printed: ``pytest -s``), and its
``msgworker`` command names the extra to install instead of failing with a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes  # every test here runs real child processes

ROOT = Path(__file__).resolve().parent.parent
# What pip and setuptools bring to every virtualenv, not counted as the producer's.
VENV_TOOLING = ("pip", "setuptools", "_distutils_hack", "pkg_resources")
# The producer's site-packages measured 24 MB (pydantic-core is half of it); Celery, aiohttp,
# rich, FastAPI and uvicorn would add far more.
PRODUCER_MAX_MB = 40


def _run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(  # noqa: S603 - our own tools, fixed arguments
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _size_mb(site: Path) -> float:
    total = 0
    for path in site.rglob("*"):
        top = path.relative_to(site).parts[0]
        if path.is_file() and not top.startswith(VENV_TOOLING):
            total += path.stat().st_size
    return total / 1e6


def test_a_producer_only_install_enqueues_without_celery(redis_url, redis_client, tmp_path):
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "-q",
        "-w",
        tmp_path / "wheels",
        ROOT,
        cwd=tmp_path,
    )
    [wheel] = (tmp_path / "wheels").glob("msgworker-*.whl")
    _run(sys.executable, "-m", "venv", tmp_path / "venv", cwd=tmp_path)
    python = tmp_path / "venv" / "bin" / "python"
    _run(python, "-m", "pip", "install", "-q", wheel, cwd=tmp_path)
    installed = _run(python, "-m", "pip", "list", "--format=freeze", cwd=tmp_path).lower()
    for absent in ("celery", "kombu", "aiohttp", "rich", "fastapi", "uvicorn", "prometheus"):
        assert absent not in installed, absent
    code = (
        "import asyncio, sys\n"
        "from msgworker import enqueue, enqueue_async, TextMessage, Text\n"
        "print(enqueue(TextMessage(to='905321234567', text=Text(body='hi'))))\n"
        "print(asyncio.run(enqueue_async({'to': '905321234567', 'type': 'text', 'text': {'body': 'x'}})))\n"
        "print('celery' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MSGWORKER_", "PYTHON"))}
    env["MSGWORKER_BROKER_URL"] = redis_url
    first, second, celery = _run(python, "-c", code, cwd=tmp_path, env=env).split()
    assert celery == "False"
    assert redis_client.hget(f"msgworker:job:{first}", "state") == "queued"
    assert redis_client.hget(f"msgworker:job:{second}", "state") == "queued"
    command = subprocess.run(  # noqa: S603 - the installed command
        [str(tmp_path / "venv" / "bin" / "msgworker"), "status"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # The command says what to install for it, in one line, never with a traceback.
    assert command.returncode == 2, command.stderr
    assert "pip install 'msgworker[worker]'" in command.stderr
    assert "Traceback" not in command.stderr
    [site] = (tmp_path / "venv" / "lib").glob("python3.*/site-packages")
    # The wheel carries the routing table beside the module that reads it: no checkout needed.
    table = (
        "from worker.send.routing import default_routing_path, load_routing_table\n"
        "print(default_routing_path())\n"
        "print(load_routing_table().default.action)\n"
    )
    path, default_action = _run(python, "-c", table, cwd=tmp_path, env=env).split()
    assert Path(path) == site / "worker" / "send" / "routing.toml"
    assert default_action == "park"
    size = _size_mb(site)
    print(f"producer-only install: {size:.1f} MB in site-packages (pip and setuptools excluded)")  # noqa: T201
    assert size < PRODUCER_MAX_MB
