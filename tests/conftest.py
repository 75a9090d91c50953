"""Fixtures that start real servers on free ports; nothing already running is used."""

from __future__ import annotations

import pytest
import redis

from tests.support.processes import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One private redis-server for the session."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    """The private server's URL, flushed before each test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url):
    """A client of the private server, flushed before each test."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()
