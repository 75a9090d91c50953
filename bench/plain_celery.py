"""The plain-Celery baseline: a minimal app doing the same Gateway call msgworker makes.

    celery -A bench.plain_celery worker      (env BENCH_BROKER_URL, BENCH_SANDBOX_URL,
                                              BENCH_API_KEY; BENCH_RATE_LIMIT for send_limited;
                                              BENCH_MASTER_NAME for a sentinel:// broker)

Nothing of msgworker is imported: JSON serialisation, one shared ``httpx.Client`` per process,
``Authorization: Bearer <key>``, the body the bench hands over, ``?is_fake=true`` as msgworker
adds it in sandbox mode. Everything else is Celery's defaults.

- ``bench.send``: POST once, raise on an error answer (the bare task).
- ``bench.send_limited``: ``rate_limit`` per worker (``BENCH_RATE_LIMIT``, default ``80/s``) and
  a retry after ``Retry-After`` when the Gateway answers 429: what a careful Celery user writes.
- ``bench.send_retry``: the same retry on 429, no ``rate_limit``.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import httpx
from celery import Celery, Task, signals

_lock = threading.Lock()
_client: httpx.Client | None = None


@signals.worker_ready.connect
def _announce(sender: Any = None, **_: Any) -> None:
    """Celery logs "<name> ready." at INFO, below its default level: the bench waits for it."""
    print(f"{getattr(sender, 'hostname', 'plain')} ready.", file=sys.__stderr__, flush=True)


def client() -> httpx.Client:
    """One pooled client per process, built on first use (after any fork)."""
    global _client  # noqa: PLW0603 - one per process, like msgworker's
    with _lock:
        if _client is None:
            _client = httpx.Client(
                base_url=os.environ.get("BENCH_SANDBOX_URL", "http://127.0.0.1:8099"),
                headers={"Authorization": f"Bearer {os.environ.get('BENCH_API_KEY', '')}"},
                params={"is_fake": "true"},
                timeout=10,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            )
        return _client


def post(body: dict[str, Any]) -> httpx.Response:
    return client().post("/v1/wa/message", json=body)


def send(body: dict[str, Any]) -> None:
    post(body).raise_for_status()


class RateLimited(Exception):
    """A 429 from the Gateway; ``retry_after`` in seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"429, retry after {retry_after:g}s")
        self.retry_after = retry_after


def _send_or_retry(task: Task[Any, Any], body: dict[str, Any]) -> None:
    response = post(body)
    if response.status_code == 429:
        retry_after = float(response.headers.get("Retry-After", "1"))
        raise task.retry(countdown=retry_after, exc=RateLimited(retry_after))
    response.raise_for_status()


def send_limited(self: Task[Any, Any], body: dict[str, Any]) -> None:
    _send_or_retry(self, body)


def send_retry(self: Task[Any, Any], body: dict[str, Any]) -> None:
    _send_or_retry(self, body)


def create_app(broker_url: str, master_name: str | None = None) -> Celery:
    """The app with its three tasks; the worker uses the module's ``app`` below. A ``sentinel://``
    broker needs ``master_name``: the name the sentinels know the primary by."""
    made = Celery("plain", broker=broker_url, set_as_current=False)
    made.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
    )
    if master_name:
        made.conf.broker_transport_options = {"master_name": master_name}
    made.task(name="bench.send")(send)
    rate_limit = os.environ.get("BENCH_RATE_LIMIT", "80/s")
    made.task(name="bench.send_limited", bind=True, rate_limit=rate_limit, max_retries=None)(
        send_limited
    )
    made.task(name="bench.send_retry", bind=True, max_retries=None)(send_retry)
    return made


app = create_app(
    os.environ.get("BENCH_BROKER_URL", "redis://localhost:6379/0"),
    os.environ.get("BENCH_MASTER_NAME"),
)
