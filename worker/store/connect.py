"""Every Redis client the product makes, from one URL: one server, the primary of a Sentinel
service, or a Redis Cluster.

A Sentinel client asks the sentinels where the primary is on each new connection, and drops its
connections when they name another one, so a producer, a worker or a command follows a
failover by itself. A connection still open to a demoted primary gets READONLY on its next
write: redis-py's Sentinel connection turns that into a ConnectionError and asks again, so
callers see a connection loss (retried by a worker, Unavailable for a producer), never a
refused write. While the sentinels know no healthy primary, connecting fails at once
(MasterNotFoundError, a ConnectionError).

A Cluster client is redis-py's RedisCluster with the same timeouts and retries: it learns the
nodes from any one that answers, sends each command to the primary of its key's slot, and
follows MOVED (a failover, a resharding) by itself. It answers the same commands as a client
of one server, so it is handed to callers as one; what one server allows and a cluster does
not (a script or a transaction over keys of several slots) fails with a cluster error.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any, cast

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from worker.errors import ConfigError
from worker.urls import SentinelURL, is_cluster, is_sentinel, parse_cluster, parse_sentinel

# What to do about a certificate the client does not trust, said with the problem.
CERTIFICATE_ADVICE = (
    "give the CA in the URL (?ssl_ca_certs=/path/to/ca.pem), or ?ssl_cert_reqs=none to skip "
    "the check"
)


def connection_problem(exc: BaseException) -> str | None:
    """What a failed connection says that helps whoever must fix it, when it says something a
    bare "cannot reach Redis" would hide: a TLS certificate the client does not trust."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return (
                f"its TLS certificate is not trusted ({seen.verify_message}): {CERTIFICATE_ADVICE}"
            )
        if "CERTIFICATE_VERIFY_FAILED" in str(seen):
            reason = str(seen).partition("certificate verify failed:")[2].partition("(")[0]
            return f"its TLS certificate is not trusted ({reason.strip()}): {CERTIFICATE_ADVICE}"
        seen = seen.__cause__ or seen.__context__
    return None


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
    if is_cluster(url):
        return cast("redis.Redis", connect_cluster(url, **options))
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
        where.service,
        connection_pool_class=_PrimaryPool,
        connection_class=_PrimaryConnection,
        **_node_options(where),
        **options,
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
    if is_cluster(url):
        return cast("redis.asyncio.Redis", connect_async_cluster(url, **options))
    if not is_sentinel(url):
        client: redis.asyncio.Redis = redis.asyncio.Redis.from_url(url, **options)
        return client
    where = parse_sentinel(url)
    sentinels = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        where.sentinels, sentinel_kwargs=_sentinel_options(where, timeout_s, sentinel_password)
    )
    primary: redis.asyncio.Redis = sentinels.master_for(
        where.service,
        connection_pool_class=_AsyncPrimaryPool,
        connection_class=_AsyncPrimaryConnection,
        **_node_options(where),
        **options,
    )
    return primary


def connect_cluster(url: str, *, retry: Retry, **options: Any) -> redis.cluster.RedisCluster:
    """A client of the cluster at ``url`` (``redis+cluster://``): ``retry`` is the cluster
    client's own (it retries a lost node after asking for the slots again); the other options
    are each node connection's. Construction asks the nodes for the slots: no node answering
    is a ConnectionError."""
    where = parse_cluster(url)
    # Node connections take no health checks here: the client drops a node's connections
    # when a command on them fails, and asks for the slots again.
    options.pop("health_check_interval", None)
    try:
        return redis.cluster.RedisCluster(
            startup_nodes=[
                redis.cluster.ClusterNode(host, port)  # type: ignore[no-untyped-call]
                for host, port in where.nodes
            ],
            username=where.username,
            password=where.password,
            retry=retry,
            **options,
        )
    except RedisClusterException as error:
        if "cluster mode is not enabled" in str(error).lower():
            raise ConfigError(
                f"{where.masked()} is a Redis server, not a cluster: give it as redis:// "
                "(redis+cluster:// is for Redis Cluster)"
            ) from error
        raise RedisConnectionError(f"the cluster at {where.masked()} cannot be used") from error


def connect_async_cluster(
    url: str, *, retry: AsyncRetry, **options: Any
) -> redis.asyncio.cluster.RedisCluster:
    """As ``connect_cluster``, for asyncio: the slots are asked for on the first command."""
    where = parse_cluster(url)
    return redis.asyncio.cluster.RedisCluster(
        startup_nodes=[redis.asyncio.cluster.ClusterNode(host, port) for host, port in where.nodes],
        username=where.username,
        password=where.password,
        retry=retry,
        **options,
    )


Address = tuple[str, int]
# A demoted primary refuses a script's write with a script error that carries this, not with
# the READONLY reply redis-py's Sentinel connection already takes for a moved primary.
DEMOTED = "READONLY You can't write"


def _demoted(error: ResponseError) -> RedisConnectionError:
    del error  # chained by the caller
    return RedisConnectionError("the primary was demoted to a replica")


class _PrimaryConnection(redis.sentinel.SentinelManagedConnection):
    """A connection to the primary that takes any refusal of a write by a replica (a script's
    included) for a lost connection: dropped, and asked for again through the sentinels."""

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except ResponseError as error:
            if DEMOTED not in str(error):
                raise
            self.disconnect()  # type: ignore[no-untyped-call]
            raise _demoted(error) from error


class _AsyncPrimaryConnection(redis.asyncio.sentinel.SentinelManagedConnection):
    """As ``_PrimaryConnection``, for asyncio."""

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except ResponseError as error:
            if DEMOTED not in str(error):
                raise
            await self.disconnect()
            raise _demoted(error) from error


def on_primary_change(client: redis.Redis, callback: Callable[[Address, Address], None]) -> None:
    """Have ``callback(old, new)`` called each time ``client`` finds its primary at another
    address than before (a failover); a client of one server has no primary to follow."""
    pool = client.connection_pool
    if isinstance(pool, _PrimaryPool):
        pool.on_change = callback


class _PrimaryPool(redis.sentinel.SentinelConnectionPool):
    """The primary's connections, and the sentinels' with them: closing the client closes all.
    Its connections ask it for the primary's address on each connect; ``on_change`` hears of a
    move."""

    on_change: Callable[[Address, Address], None] | None = None

    def __init__(self, service_name: str, sentinel_manager: Any, **kwargs: Any) -> None:
        super().__init__(service_name, sentinel_manager, **kwargs)  # type: ignore[no-untyped-call]
        self.proxy = _WatchedProxy(  # type: ignore[no-untyped-call]
            connection_pool=self,
            is_master=self.is_master,
            check_connection=self.check_connection,
            service_name=service_name,
            sentinel_manager=sentinel_manager,
        )
        self.connection_kwargs["connection_pool"] = self.proxy

    def disconnect(self, inuse_connections: bool = True) -> None:
        super().disconnect(inuse_connections)
        if inuse_connections:  # the client's close; a moved primary drops only idle ones
            self.sentinel_manager.close()


class _WatchedProxy(redis.sentinel.SentinelConnectionPoolProxy):
    """What a connection asks for the primary's address (redis-py's), telling its pool's
    ``on_change`` when the address is another than the last one found."""

    def get_master_address(self) -> Address:
        found: Any = self.master_address
        before = None if found is None else (str(found[0]), int(found[1]))
        host, port = super().get_master_address()  # type: ignore[no-untyped-call]
        address = (str(host), int(port))
        pool = self.connection_pool_ref()
        moved = before is not None and before != address
        if moved and pool is not None and pool.on_change is not None:
            pool.on_change(before, address)
        return address


class _AsyncPrimaryPool(redis.asyncio.sentinel.SentinelConnectionPool):
    """The primary's connections, and the sentinels' with them: closing the client closes all."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:  # the client's close; a moved primary drops only idle ones
            await self.sentinel_manager.aclose()


def _node_options(where: SentinelURL) -> dict[str, Any]:
    """The data nodes' database and credentials (the URL's)."""
    return {"db": where.db, "username": where.username, "password": where.password}


def _sentinel_options(where: SentinelURL, timeout_s: float, password: str | None) -> dict[str, Any]:
    """How to talk to the sentinels: asking each in turn fits in one ``timeout_s`` together."""
    each_s = timeout_s / len(where.sentinels)
    return {"socket_timeout": each_s, "socket_connect_timeout": each_s, "password": password}
