"""A digest of everything in a Redis database: what a refused request must leave unchanged."""

from __future__ import annotations

import hashlib

import redis


def digest(client: redis.Redis) -> str:
    """Every key's name, value (DUMP: the same bytes for the same content) and whether it
    expires; equal digests mean nothing was written, removed or given a TTL."""
    hashed = hashlib.sha256()
    for key in sorted(client.scan_iter(count=1000)):
        hashed.update(key if isinstance(key, bytes) else str(key).encode())
        hashed.update(client.dump(key) or b"")
        hashed.update(b"expires" if client.pttl(key) >= 0 else b"kept")
    return hashed.hexdigest()
