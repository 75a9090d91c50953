"""Every Redis client the product makes, from one URL: one server, or the primary of a Sentinel
service.

A Sentinel client asks the sentinels where the primary is on each new connection, and drops its
connections when they name another one, so a producer, a worker or a command follows a
failover by itself. A connection still open to a demoted primary gets READONLY on its next
write: redis-py's Sentinel connection turns that into a ConnectionError and asks again, so
callers see a connection loss (retried by a worker, Unavailable for a producer), never a
refused write. While the sentinels know no healthy primary, connecting fails at once
(MasterNotFoundError, a ConnectionError).
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from worker.urls import SentinelURL, is_sentinel, parse_sentinel

# A long-lived client's connections are checked when idle this long, so one a failover or a
# restart cut is noticed before a command is lost on it.
HEALTH_CHECK_S = 30


def connect(
    url: str,
    *,
    timeout_s: float | None,
    connect_timeout_s: float | None = None,
    retry: Retry | None = None,
    health_check_s: int = 0,
    sentinel_password: str | None = None,
) -> redis.Redis:
    """A client of the store at ``url``: each connect and reply waits at most its timeout
    (``timeout_s`` None: a reply is awaited without one); with ``retry``, connection losses and
    timeouts are retried by it."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": connect_timeout_s or timeout_s,
        "health_check_interval": health_check_s,
        "retry": retry or Retry(NoBackoff(), retries=0),
    }
    if retry is not None:
        options["retry_on_error"] = [RedisConnectionError, RedisTimeoutError]
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    where = parse_sentinel(url)
    asking_s = options["socket_connect_timeout"]
    sentinels = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        where.sentinels, sentinel_kwargs=_sentinel_options(where, asking_s, sentinel_password)
    )
    client: redis.Redis = sentinels.master_for(  # type: ignore[no-untyped-call]
        where.service, connection_pool_class=_PrimaryPool, **_node_options(where), **options
    )
    return client


def connect_redis(
    url: str, *, retries: int = 8, timeout_s: float = 10.0, sentinel_password: str | None = None
) -> redis.Redis:
    """A client that rides out a Redis restart or failover: reconnects and retries with backoff."""
    return connect(
        url,
        timeout_s=timeout_s,
        connect_timeout_s=min(5.0, timeout_s),
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=retries),
        health_check_s=HEALTH_CHECK_S,
        sentinel_password=sentinel_password,
    )


def connect_redis_fail_fast(
    url: str, *, timeout_s: float, sentinel_password: str | None = None
) -> redis.Redis:
    """A client for producers and commands: an answer, or an error within ``timeout_s``.

    No retries: the connect and each reply wait at most ``timeout_s``, once. A pooled connection
    Redis closed meanwhile (a restart) is replaced when it is taken from the pool, not retried.
    """
    return connect(url, timeout_s=timeout_s, sentinel_password=sentinel_password)


def connect_listener(url: str, *, sentinel_password: str | None = None) -> redis.Redis:
    """A client for a subscription: no reply timeout (it waits for messages), and never a
    reconnection by itself (a listener must know when it was deaf)."""
    return connect(url, timeout_s=None, connect_timeout_s=5.0, sentinel_password=sentinel_password)


def connect_async_fail_fast(
    url: str, *, timeout_s: float, sentinel_password: str | None = None
) -> redis.asyncio.Redis:
    """An asyncio client that answers or fails within ``timeout_s``: no retries, no backoff."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": AsyncRetry(NoBackoff(), retries=0),
    }
    if not is_sentinel(url):
        client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(url, **options)
        return client
    where = parse_sentinel(url)
    sentinels = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        where.sentinels, sentinel_kwargs=_sentinel_options(where, timeout_s, sentinel_password)
    )
    primary: redis.asyncio.Redis = sentinels.master_for(
        where.service, connection_pool_class=_AsyncPrimaryPool, **_node_options(where), **options
    )
    return primary


class _PrimaryPool(redis.sentinel.SentinelConnectionPool):
    """The primary's connections, and the sentinels' with them: closing the client closes all."""

    def disconnect(self, inuse_connections: bool = True) -> None:
        super().disconnect(inuse_connections)
        self.sentinel_manager.close()


class _AsyncPrimaryPool(redis.asyncio.sentinel.SentinelConnectionPool):
    """The primary's connections, and the sentinels' with them: closing the client closes all."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        await self.sentinel_manager.aclose()


def _node_options(where: SentinelURL) -> dict[str, Any]:
    """The data nodes' database and credentials (the URL's)."""
    return {"db": where.db, "username": where.username, "password": where.password}


def _sentinel_options(where: SentinelURL, timeout_s: float, password: str | None) -> dict[str, Any]:
    """How to talk to the sentinels: asking each in turn fits in one ``timeout_s`` together."""
    each_s = timeout_s / len(where.sentinels)
    return {"socket_timeout": each_s, "socket_connect_timeout": each_s, "password": password}
