"""worker/service/broker.py: Redis brokers get kombu's Redis transport with the detached-channel fault
closed; other brokers are left to kombu. The end-to-end proof (a worker outliving Redis
restarts with sends in flight) is in tests/system/test_chaos.py."""

from __future__ import annotations

import base64
import json
import os
import pickle
from collections import Counter
from typing import Any

import httpx
import kombu
import pytest
import redis
from kombu import Connection, Exchange
from kombu.transport import redis as kombu_redis

from tests.support.cluster import API_KEY, start_worker, worker_env
from tests.support.processes import free_port, wait_for
from worker.sandbox.server import RunningSandbox, SandboxConfig
from worker.service.app import create_app
from worker.service.broker import TRANSPORT, Transport, transport_for
from worker.service.runtime import Runtime
from worker.service.tasks import TASK_NAME
from worker.settings import Settings
from worker.store.states import JobState


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://localhost:6379/0", TRANSPORT),
        ("rediss://:pw@cache.internal:6380/1", None),  # kombu enables TLS by scheme name
        ("amqp://guest:guest@localhost:5672//", None),
        ("sentinel://localhost:26379", None),
    ],
)
def test_only_plain_redis_urls_get_our_transport(url, expected):
    """TLS brokers keep kombu's transport, which turns TLS on for the scheme named rediss."""
    assert transport_for(url) == expected


def test_a_redis_app_connects_through_our_transport_and_shows_a_redis_url(redis_url):
    app = create_app(Settings(broker_url=redis_url, _env_file=None))
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)
        assert issubclass(Transport, kombu_redis.Transport)
        assert connection.transport.driver_type == "redis"  # Celery's redis-only features stay on
        assert connection.as_uri().startswith("redis://")
        connection.default_channel.client.ping()


def test_a_channel_left_by_a_collected_connection_raises_a_connection_error(redis_url):
    """What Celery does after a broker connection loss: collect the connection. Using its old
    channel afterwards (a late ack, a restore) must be a connection error Celery handles, not
    kombu's AttributeError that stops the worker."""
    app = create_app(Settings(broker_url=redis_url, _env_file=None))
    connection = app.connection_for_write()
    errors = connection.connection_errors
    channel = connection.channel()
    connection.collect()
    with pytest.raises(errors, match="broker connection was closed"), channel.conn_or_acquire():
        pass
    connection.release()


def test_a_channel_keeps_one_client_per_pool_and_a_collected_one_still_raises(redis_url):
    """Publishes, unacked entries and acks share one redis-py client while the channel's pool
    lives; a new pool gets a new client; once the connection is collected, a connection error."""
    app = create_app(Settings(broker_url=redis_url, _env_file=None))
    connection = app.connection_for_write()
    channel = connection.channel()
    with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
        assert first is second
        assert first.connection_pool is channel.pool
        assert first.ping()
    channel._disconnect_pools()
    with channel.conn_or_acquire() as after_reset:
        assert after_reset is not first
        assert after_reset.connection_pool is channel.pool
        assert after_reset.ping()
    connection.collect()
    with pytest.raises(connection.connection_errors), channel.conn_or_acquire():
        pass
    connection.release()


def _envelope_template(redis_url: str) -> dict[str, Any]:
    """A real task message as kombu writes it on a Redis list, read back raw."""
    with Connection(redis_url) as connection:
        producer = kombu.Producer(connection.channel(), exchange=Exchange("", type="direct"))
        producer.publish(
            [["0" * 32, 1], {}, {}],
            routing_key="template-only",
            serializer="json",
            headers={"task": TASK_NAME, "id": "template-1", "lang": "py"},
        )
    client = redis.Redis.from_url(redis_url)
    raw = client.rpop("template-only")
    client.close()
    assert raw is not None
    envelope: dict[str, Any] = json.loads(raw)
    return envelope


def _hostile_items(envelope: dict[str, Any]) -> list[tuple[bytes, str]]:
    """Bytes no producer of ours writes, each with the reason it is to be counted under."""

    def variant(**changes: Any) -> bytes:
        return json.dumps({**envelope, **changes}).encode()

    properties = envelope["properties"]
    whole = json.dumps(envelope).encode()
    pickled = base64.b64encode(pickle.dumps([["0" * 32, 1], {}, {}])).decode()
    return [
        (b"not json at all", "not_json"),
        (bytes(range(256)) + os.urandom(512), "not_json"),
        (whole[: len(whole) // 2], "not_json"),
        (b"[1, 2, 3]", "not_envelope"),
        (b'{"valid": "json"}', "not_envelope"),
        (variant(properties=None), "not_envelope"),
        (
            variant(properties={k: v for k, v in properties.items() if k != "delivery_tag"}),
            "not_envelope",
        ),
        (
            variant(properties={k: v for k, v in properties.items() if k != "delivery_info"}),
            "not_envelope",
        ),
        (variant(body="%%% not base64 %%%"), "not_envelope"),
        (variant(properties={**properties, "body_encoding": "rot13"}), "not_envelope"),
        (variant(headers=["task"]), "not_envelope"),
        (variant(**{"content-type": "application/x-python-serialize", "body": pickled}), "refused"),
        (variant(body=base64.b64encode(b"{{{ nope").decode()), "undecodable"),
        (
            variant(headers={"id": "no-task-named"}, body=base64.b64encode(b"{}").decode()),
            "not_a_task",
        ),
        (variant(body=base64.b64encode(b"x" * 8_000_000).decode()), "too_large"),
    ]


def _rejected_by_reason(exposition: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in exposition.splitlines():
        if line.startswith("msgworker_broker_messages_rejected_total{"):
            reason = line.split('reason="', 1)[1].split('"', 1)[0]
            counts[reason] += int(float(line.rsplit(" ", 1)[1]))
    return +counts


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_the_worker_drops_any_bytes_on_its_queue_counts_them_and_keeps_sending(redis_url, tmp_path):
    """Garbage on the broker list (not JSON, not an envelope, pickle, truncated, random, huge) is
    logged, dropped and counted; the worker stays up and sends the good job queued after it."""
    port = free_port()
    with RunningSandbox(SandboxConfig(api_keys=(API_KEY,))) as sandbox:
        runtime = Runtime(
            Settings(broker_url=redis_url, api_base_url=sandbox.url, sandbox=True, _env_file=None)
        )
        worker = start_worker(
            worker_env(redis_url, sandbox.url, metrics_port=str(port)), tmp_path / "w.log"
        )
        try:
            queue = runtime.settings.queue
            items = _hostile_items(_envelope_template(redis_url))
            for item, _reason in items:
                runtime.redis.lpush(queue, item)
            wait_for(lambda: runtime.redis.llen(queue) == 0, what="the garbage consumed")
            job_id = runtime.producer.enqueue(
                {"to": "905321234567", "type": "text", "text": {"body": "after the garbage"}}
            )
            wait_for(lambda: runtime.jobs.get(job_id).state is JobState.SENT, timeout_s=30)
            assert worker.process.poll() is None, worker.log()[-3000:]
            assert "Unrecoverable error" not in worker.log()
            exposition = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            assert _rejected_by_reason(exposition) == Counter(reason for _, reason in items)
            assert worker.log().count("broker.message_rejected") == len(items)
        finally:
            worker.stop()
            runtime.close()
