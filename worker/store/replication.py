"""Waiting for replicas: a write a promise rests on counts only once N replicas have it.

WAIT counts the writes of the connection it runs on, up to that connection's last one. A write
of its own just before it, on the same connection (one pipeline), makes it count every write
the primary made until then, whoever made it: the replication stream is one ordered log. So one
barrier covers an enqueue script's writes, or a settlement's, made a moment before on another
pooled connection.

It counts on the server it ran on, though. A client retries a command that timed out on another
connection, and behind Sentinel that may be a new primary: the write went to the old one, which
a partition cut off before its replicas had it, and a WAIT on the new one vouches for nothing.
So each barrier names a witness, a key the write left, and reads it after the WAIT on the same
connection: found there, the write is on the primary whose replicas acknowledged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio

from worker.errors import ReplicasMissing, WriteLost
from worker.store.claims import Execution
from worker.store.keys import Keys
from worker.store.records import Job

# WAIT gets this share of REDIS_TIMEOUT_S: the rest is for the round trip itself, so a missing
# replica is told apart from a silent primary (a socket timeout) within REDIS_TIMEOUT_S.
WAIT_SHARE = 0.75


@dataclass(frozen=True)
class Witness:
    """What the write a barrier vouches for left: ``keys`` all present (an enqueue's jobs), or,
    with ``value``, the one key holding that value (a begin's claim)."""

    keys: tuple[str, ...]
    value: str | None = None


class Replication:
    """Confirms that ``replicas`` replicas have every write made so far (none when 0)."""

    def __init__(self, keys: Keys, *, replicas: int, timeout_s: float) -> None:
        self.replicas = replicas
        self._keys = keys
        self._key = keys.replicated
        self._timeout_s = timeout_s
        self._wait_ms = max(1, int(timeout_s * WAIT_SHARE * 1000))

    def jobs(self, job_ids: Sequence[str]) -> Witness:
        """An enqueue's witness: the records of the jobs it returned (new, or a known
        idempotency key's first)."""
        return Witness(tuple(dict.fromkeys(self._keys.job(job_id) for job_id in job_ids)))

    def confirm_claim(self, client: redis.Redis, execution: Execution, job: Job) -> None:
        """``confirm`` before a call: its witness is the claim ``execution`` took of ``job``."""
        self.confirm(client, Witness((self._keys.claim(job.account, job.key),), execution.holder))

    def confirm(self, client: redis.Redis, witness: Witness) -> None:
        """Return once the replicas have every write so far, ``witness``'s among them;
        ReplicasMissing after the wait, WriteLost when the write is not on this primary."""
        if self.replicas:
            with client.pipeline(transaction=False) as pipe:
                self._barrier(pipe, witness)
                self._judge(pipe.execute(), witness)

    async def confirm_async(self, client: redis.asyncio.Redis, witness: Witness) -> None:
        """As ``confirm``, awaited."""
        if self.replicas:
            async with client.pipeline(transaction=False) as pipe:
                self._barrier(pipe, witness)
                self._judge(await pipe.execute(), witness)

    def _barrier(self, pipe: Any, witness: Witness) -> None:
        pipe.incr(self._key)
        pipe.wait(self.replicas, self._wait_ms)
        if witness.value is not None:
            pipe.get(witness.keys[0])
        elif witness.keys:
            pipe.exists(*witness.keys)

    def _judge(self, replies: list[Any], witness: Witness) -> None:
        acknowledged, found = int(replies[1]), replies[2:]
        if acknowledged < self.replicas:
            raise ReplicasMissing(
                wanted=self.replicas, acknowledged=acknowledged, timeout_s=self._timeout_s
            )
        if witness.value is not None:
            (value,) = found
            present = (value.decode() if isinstance(value, bytes) else value) == witness.value
        else:
            present = not witness.keys or int(found[0]) == len(witness.keys)
        if not present:
            raise WriteLost(
                wanted=self.replicas, acknowledged=acknowledged, timeout_s=self._timeout_s
            )
