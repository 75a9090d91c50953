"""The URL forms of the state store and the broker: which engine each names, and the Sentinel
form read into its parts.

``redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT…]/SERVICE[/DB]`` names the primary
of SERVICE as the sentinels at those addresses know it; the password is the data nodes'
(the sentinels' own is a setting of its own, so that neither travels where the other goes).
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
MASK = "***"


class StoreKind(StrEnum):
    """How the state store is reached (``msgworker status``)."""

    REDIS = "redis"
    SENTINEL = "sentinel"


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
        userinfo = ""
        if self.username is not None or self.password is not None:
            user = MASK if self.username else ""
            userinfo = f"{user}:{MASK}@" if self.password is not None else f"{user}@"
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


def is_sentinel(url: str) -> bool:
    return url.startswith(f"{SENTINEL_SCHEME}://")


def store_kind(url: str) -> StoreKind:
    return StoreKind.SENTINEL if is_sentinel(url) else StoreKind.REDIS


def broker_kind(url: str) -> BrokerKind:
    if url.startswith(AMQP_SCHEMES):
        return BrokerKind.RABBITMQ
    return BrokerKind.SENTINEL if is_sentinel(url) else BrokerKind.REDIS


def parse_sentinel(url: str) -> SentinelURL:
    """The parts of a ``redis+sentinel://`` URL; ValueError saying what is wrong (never echoing
    the password)."""
    rest = url.removeprefix(f"{SENTINEL_SCHEME}://")
    if "?" in rest or "#" in rest:
        raise ValueError(f"takes no query or fragment ({SENTINEL_FORM})")
    netloc, _, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    username = password = None
    if userinfo:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = tuple(_address(part) for part in hosts.split(","))
    service, _, db = path.partition("/")
    if not service:
        raise ValueError(f"names no service (the primary's name): {SENTINEL_FORM}")
    if not db.isdigit() and db:
        raise ValueError(f"has a database that is not a number: {SENTINEL_FORM}")
    return SentinelURL(sentinels, unquote(service), int(db or 0), username, password)


def _address(part: str) -> tuple[str, int]:
    host, port = part, ""
    if part.startswith("["):  # [IPv6]:port
        inside, _, after = part[1:].partition("]")
        host, port = inside, after.removeprefix(":")
    elif ":" in part:
        host, _, port = part.rpartition(":")
    if not host:
        raise ValueError(f"names a sentinel without a host: {SENTINEL_FORM}")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"has a sentinel port that is not a port number: {SENTINEL_FORM}")
    return host, int(port or SENTINEL_PORT)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _hosts(sentinels: tuple[tuple[str, int], ...]) -> str:
    return ",".join(f"{_host(host)}:{port}" for host, port in sentinels)
