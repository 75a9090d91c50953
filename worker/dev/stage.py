"""The demo's stage: Redis, the worker and serve processes, waiting, and cleaning up after."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import redis

from worker.dev.localredis import LocalRedis
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.connect import connect

STEP_TIMEOUT_S = 60.0


def say(text: str = "") -> None:
    print(text, flush=True)


def wait_until(
    condition: Callable[[], bool], *, what: str, timeout_s: float = STEP_TIMEOUT_S
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo: timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def redis_for_demo(settings: Settings, workdir: Path) -> Iterator[tuple[str, str]]:
    """(URL, where from): the configured Redis if it answers, else a private one."""
    try:
        probe = connect(
            settings.state_url, timeout_s=0.5, sentinel_password=settings.sentinel_password
        )
        probe.ping()
        probe.close()
    except (redis.RedisError, OSError, ValueError):
        server = LocalRedis(workdir)
        server.start()
        try:
            yield server.url, f"a private redis-server on port {server.port}"
        finally:
            server.stop()
        return
    yield settings.state_url, "the Redis at BROKER_URL"


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def start_serve(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).with_name("msgworker")), "serve"]
    with log_path.open("wb") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).with_name("msgworker")), "worker", "--concurrency", "8"]
    with log_path.open("wb") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def clean_up(runtime: Runtime) -> None:
    """Remove the demo's keys, so a shared Redis keeps nothing of it."""
    for key in runtime.redis.scan_iter(match=f"{runtime.keys.prefix}*", count=1000):
        runtime.redis.delete(key)
    queue = runtime.settings.queue
    runtime.redis.delete(queue, f"_kombu.binding.{queue}")
    runtime.close()
