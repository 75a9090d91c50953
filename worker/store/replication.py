"""Waiting for replicas: a write a promise rests on counts only once N replicas have it.

WAIT counts the writes of the connection it runs on, up to that connection's last one. A write
of its own just before it, on the same connection (one pipeline), makes it count every write
the primary made until then, whoever made it: the replication stream is one ordered log. So one
barrier covers an enqueue script's writes, or a settlement's, made a moment before on another
pooled connection.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio

from worker.errors import ReplicasMissing
from worker.store.keys import Keys

# WAIT gets this share of REDIS_TIMEOUT_S: the rest is for the round trip itself, so a missing
# replica is told apart from a silent primary (a socket timeout) within REDIS_TIMEOUT_S.
WAIT_SHARE = 0.75


class Replication:
    """Confirms that ``replicas`` replicas have every write made so far (none when 0)."""

    def __init__(self, keys: Keys, *, replicas: int, timeout_s: float) -> None:
        self.replicas = replicas
        self._key = keys.replicated
        self._timeout_s = timeout_s
        self._wait_ms = max(1, int(timeout_s * WAIT_SHARE * 1000))

    def confirm(self, client: redis.Redis) -> None:
        """Return once the replicas have every write so far; ReplicasMissing after the wait."""
        if self.replicas:
            with client.pipeline(transaction=False) as pipe:
                self._barrier(pipe)
                self._judge(pipe.execute())

    async def confirm_async(self, client: redis.asyncio.Redis) -> None:
        """As ``confirm``, awaited."""
        if self.replicas:
            async with client.pipeline(transaction=False) as pipe:
                self._barrier(pipe)
                self._judge(await pipe.execute())

    def _barrier(self, pipe: Any) -> None:
        pipe.incr(self._key)
        pipe.wait(self.replicas, self._wait_ms)

    def _judge(self, replies: list[Any]) -> None:
        acknowledged = int(replies[-1])
        if acknowledged < self.replicas:
            raise ReplicasMissing(
                wanted=self.replicas, acknowledged=acknowledged, timeout_s=self._timeout_s
            )
