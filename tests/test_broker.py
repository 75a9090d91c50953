"""worker/broker.py: Redis brokers get kombu's Redis transport with the detached-channel fault
closed; other brokers are left to kombu. The end-to-end proof (a worker outliving Redis
restarts with sends in flight) is in tests/test_chaos.py."""

from __future__ import annotations

import pytest
from kombu.transport import redis as kombu_redis

from worker.app import create_app
from worker.broker import TRANSPORT, Transport, transport_for
from worker.settings import Settings


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
