"""Looking for a secret where it could hide: every value in Redis, read as values (GET, HGETALL,
LRANGE, SMEMBERS, ZRANGE, XRANGE), and any 8-character piece of it, case-insensitively.

Never the output of Redis' DUMP: it compresses strings over 20 bytes (LZF), so a key inside a
dead letter's JSON can be split by back-references and missed.
"""

from __future__ import annotations

from collections.abc import Iterator

import redis

FRAGMENT = 8


def fragments(secret: str, size: int = FRAGMENT) -> set[str]:
    """Every ``size``-character piece of ``secret``, lower-cased (the whole of a shorter one)."""
    lowered = secret.lower()
    if len(lowered) <= size:
        return {lowered}
    return {lowered[i : i + size] for i in range(len(lowered) - size + 1)}


def leaked(text: str, secret: str) -> bool:
    """Whether ``text`` holds ``secret`` or any 8-character piece of it."""
    lowered = text.lower()
    return any(piece in lowered for piece in fragments(secret))


def redis_values(client: redis.Redis, *, max_keys: int | None = None) -> Iterator[tuple[str, str]]:
    """(key, text) for every key's name and each of its values, whatever the key's type."""
    for n, raw_key in enumerate(client.scan_iter(count=1000)):
        if max_keys is not None and n >= max_keys:
            return
        key = raw_key.decode("utf-8", "replace") if isinstance(raw_key, bytes) else str(raw_key)
        yield key, key
        for value in _values(client, raw_key):
            yield key, value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _values(client, key):
    kind = client.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    readers = {
        "string": lambda: [client.get(key) or b""],
        "hash": lambda: [item for pair in client.hgetall(key).items() for item in pair],
        "list": lambda: client.lrange(key, 0, -1),
        "set": lambda: client.smembers(key),
        "zset": lambda: client.zrange(key, 0, -1),
        "stream": lambda: [
            item for _, entry in client.xrange(key) for pair in entry.items() for item in pair
        ],
    }
    return list(readers[kind]()) if kind in readers else []


def secrets_in_redis(client: redis.Redis, secret: str, *, max_keys: int | None = None) -> list[str]:
    """The keys whose name or values hold ``secret`` or a piece of it."""
    return sorted(
        {key for key, text in redis_values(client, max_keys=max_keys) if leaked(text, secret)}
    )
