"""The URL forms of the state store and the broker: which engine each names, and the Sentinel
and Cluster forms read into their parts.

``redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT…]/SERVICE[/DB]`` names the primary
of SERVICE as the sentinels at those addresses know it; the password is the data nodes'
(the sentinels' own is a setting of its own, so that neither travels where the other goes).

``redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT…]`` names a Redis Cluster by some of
its nodes (any one that answers tells the client of the others); it has no database but 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote, unquote

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379  # Sentinel's own default port
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")
SENTINEL_FORM = f"{SENTINEL_SCHEME}://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]"
CLUSTER_SCHEME = "redis+cluster"
CLUSTER_PORT = 6379  # a node's default port
CLUSTER_FORM = f"{CLUSTER_SCHEME}://[:PASSWORD@]HOST:PORT[,HOST:PORT...]"
# Why a cluster cannot be the broker, said wherever one would be.
CLUSTER_CARRIES_NO_DISPATCHES = (
    "kombu has no Redis Cluster transport: the broker must be RabbitMQ (amqp://) or a plain or "
    "Sentinel Redis (redis://, redis+sentinel://)"
)
MASK = "***"


class StoreKind(StrEnum):
    """How the state store is reached (``msgworker status``)."""

    REDIS = "redis"
    SENTINEL = "sentinel"
    CLUSTER = "cluster"


class BrokerKind(StrEnum):
    """Which engine carries the dispatches (``msgworker status``)."""

    REDIS = "redis"
    SENTINEL = "sentinel"
    RABBITMQ = "rabbitmq"


@dataclass(frozen=True)
class SentinelURL:
    """A ``redis+sentinel://`` URL read: where the sentinels are, which primary, which database."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None

    def masked(self) -> str:
        """The URL fit to print: the user and password replaced by ***."""
        userinfo = _masked_userinfo(self.username, self.password)
        return f"{SENTINEL_SCHEME}://{userinfo}{_hosts(self.sentinels)}/{self.service}/{self.db}"

    def kombu_url(self) -> str:
        """The same sentinels in kombu's form: ``sentinel://[:PASSWORD@]H:P/DB;sentinel://H:P``
        (kombu takes the password and database from the first)."""
        userinfo = ""
        if self.password is not None:
            user = quote(self.username or "", safe="")
            userinfo = f"{user}:{quote(self.password, safe='')}@"
        first, *rest = (f"{_host(host)}:{port}" for host, port in self.sentinels)
        return ";".join(
            [f"sentinel://{userinfo}{first}/{self.db}", *(f"sentinel://{h}" for h in rest)]
        )


@dataclass(frozen=True)
class ClusterURL:
    """A ``redis+cluster://`` URL read: the nodes to ask first, and the nodes' credentials."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None

    def masked(self) -> str:
        """The URL fit to print: the user and password replaced by ***."""
        userinfo = _masked_userinfo(self.username, self.password)
        return f"{CLUSTER_SCHEME}://{userinfo}{_hosts(self.nodes)}"


def is_sentinel(url: str) -> bool:
    return url.startswith(f"{SENTINEL_SCHEME}://")


def is_cluster(url: str) -> bool:
    return url.startswith(f"{CLUSTER_SCHEME}://")


def store_kind(url: str) -> StoreKind:
    if is_cluster(url):
        return StoreKind.CLUSTER
    return StoreKind.SENTINEL if is_sentinel(url) else StoreKind.REDIS


def broker_kind(url: str) -> BrokerKind:
    if url.startswith(AMQP_SCHEMES):
        return BrokerKind.RABBITMQ
    return BrokerKind.SENTINEL if is_sentinel(url) else BrokerKind.REDIS


def parse_sentinel(url: str) -> SentinelURL:
    """The parts of a ``redis+sentinel://`` URL; ValueError saying what is wrong (never echoing
    the password)."""
    netloc, path = _netloc_and_path(url, SENTINEL_SCHEME, SENTINEL_FORM)
    username, password, hosts = _userinfo(netloc)
    sentinels = tuple(_address(part, SENTINEL_PORT, "sentinel", SENTINEL_FORM) for part in hosts)
    service, _, db = path.partition("/")
    if not service:
        raise ValueError(f"names no service (the primary's name): {SENTINEL_FORM}")
    if not db.isdigit() and db:
        raise ValueError(f"has a database that is not a number: {SENTINEL_FORM}")
    return SentinelURL(sentinels, unquote(service), int(db or 0), username, password)


def parse_cluster(url: str) -> ClusterURL:
    """The parts of a ``redis+cluster://`` URL; ValueError saying what is wrong (never echoing
    the password)."""
    netloc, path = _netloc_and_path(url, CLUSTER_SCHEME, CLUSTER_FORM)
    if path not in {"", "0"}:
        raise ValueError(f"names a database, and a cluster has only database 0: {CLUSTER_FORM}")
    username, password, hosts = _userinfo(netloc)
    nodes = tuple(_address(part, CLUSTER_PORT, "node", CLUSTER_FORM) for part in hosts)
    return ClusterURL(nodes, username, password)


def _netloc_and_path(url: str, scheme: str, form: str) -> tuple[str, str]:
    rest = url.removeprefix(f"{scheme}://")
    if "?" in rest or "#" in rest:
        raise ValueError(f"takes no query or fragment ({form})")
    netloc, _, path = rest.partition("/")
    return netloc, path


def _userinfo(netloc: str) -> tuple[str | None, str | None, list[str]]:
    """The user, the password and the comma-separated addresses of ``[USER:PASSWORD@]H:P,…``."""
    userinfo, _, hosts = netloc.rpartition("@")
    username = password = None
    if userinfo:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    return username, password, hosts.split(",")


def _masked_userinfo(username: str | None, password: str | None) -> str:
    if username is None and password is None:
        return ""
    user = MASK if username else ""
    return f"{user}:{MASK}@" if password is not None else f"{user}@"


def _address(part: str, default_port: int, what: str, form: str) -> tuple[str, int]:
    host, port = part, ""
    if part.startswith("["):  # [IPv6]:port
        inside, _, after = part[1:].partition("]")
        host, port = inside, after.removeprefix(":")
    elif ":" in part:
        host, _, port = part.rpartition(":")
    if not host:
        raise ValueError(f"names a {what} without a host: {form}")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"has a {what} port that is not a port number: {form}")
    return host, int(port or default_port)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _hosts(addresses: tuple[tuple[str, int], ...]) -> str:
    return ",".join(f"{_host(host)}:{port}" for host, port in addresses)
