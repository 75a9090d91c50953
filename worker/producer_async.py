"""The producer for asyncio apps: the same validation and the same enqueue script, awaited.

Nothing blocks the event loop: the jobs are validated in memory, then written in one round trip
on ``redis.asyncio``. Redis down or hung raises ``Unavailable`` within ``REDIS_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from worker.accounts import known_accounts
from worker.errors import StoreFull, Unavailable
from worker.producer import (
    Enqueued,
    Payload,
    Priority,
    PriorityName,
    Request,
    build_job,
    enqueued,
    given_options,
    validate_many,
)
from worker.settings import Settings, mask_url
from worker.store.connect import connection_problem
from worker.store.jobs import NO_BATCH, STORE_FULL, enqueue_call, is_out_of_memory
from worker.store.keys import DEFAULT_RETENTION_S, Keys
from worker.store.protocol import ENQUEUE
from worker.store.records import Job, NewJob
from worker.store.replication import Replication, Witness
from worker.store.scripts import script_source

# A connection failing at the socket level, or a reply that never came.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError)


@dataclass(frozen=True)
class Written:
    """What the enqueue script answered: an id per job (a known idempotency key's first job id),
    or, when the batch key was known (``batch_seen``), the first batch's ids."""

    ids: list[str]
    batch_seen: bool = False


class AsyncJobStore:
    """The two job operations a producer needs (write new jobs, read one), on redis.asyncio."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        keys: Keys,
        *,
        retention_s: float = DEFAULT_RETENTION_S,
        replication: Replication | None = None,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._retention_s = retention_s
        self._replication = replication or Replication(keys, replicas=0, timeout_s=1)
        self._enqueue = client.register_script(script_source(ENQUEUE))

    async def add(self, jobs: list[NewJob], *, now: float, batch_key: str | None = None) -> Written:
        """Write new jobs in one round trip; a known idempotency key returns its first job id,
        a known ``batch_key`` (on the same accounts) the first batch's ids and writes nothing."""
        batch = NO_BATCH if batch_key is None else self._batch(jobs, batch_key, now=now)
        keys, argv = enqueue_call(jobs, keys=self._keys, now=now, batch=batch)
        try:
            reply: list[Any] = await self._enqueue(keys=keys, args=argv)
        except ResponseError as exc:
            if not is_out_of_memory(exc):
                raise
            raise StoreFull(STORE_FULL) from None
        seen, *ids = (i.decode() if isinstance(i, bytes) else str(i) for i in reply)
        # A batch seen before wrote nothing now: the batch key it was found by is the witness
        # (its jobs' records may have gone before it).
        replication = self._replication
        witness = Witness((keys[0],)) if seen == "1" else replication.jobs(ids)
        await replication.confirm_async(self._redis, witness)
        return Written(ids, batch_seen=seen == "1")

    def _batch(self, jobs: list[NewJob], key: str, *, now: float) -> dict[str, Any]:
        """The batch key's part of the script's arguments: the key belongs to the batch's
        accounts (a client scoped to some sees only theirs), and is remembered the retention
        past the latest moment a job of the batch is due."""
        accounts = ",".join(sorted({job.account for job in jobs}))
        keep_s = self._retention_s + max(0.0, max(job.due_at for job in jobs) - now)
        return {
            "batch_accounts": accounts,
            "batch_key": key,
            "batch_keep_ms": max(1, round(keep_s * 1000)),
        }

    async def get(self, job_id: str) -> Job | None:
        """The job with its history; None when no job has this id."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._keys.job(job_id))
            pipe.lrange(self._keys.history(job_id), 0, -1)
            raw, history = await pipe.execute()
        if not raw:
            return None
        return Job.from_hash(dict(raw), list(history))

    async def ping(self) -> bool:
        """Whether Redis answers."""
        return bool(await self._redis.ping())


class AsyncProducer:
    """Validates like the blocking producer, writes with one awaited script call."""

    def __init__(
        self,
        jobs: AsyncJobStore,
        *,
        accounts: frozenset[str],
        redis_timeout_s: float,
        redis_url: str | None = None,
    ) -> None:
        """``redis_url``, masked, names the Redis an Unavailable is about."""
        self.jobs = jobs
        self.accounts = accounts
        self.redis_timeout_s = redis_timeout_s
        self.redis_url = redis_url

    async def enqueue(
        self,
        message: Payload,
        *,
        idempotency_key: str | None = None,
        send_at: datetime | None = None,
        expires_at: datetime | None = None,
        ttl_s: float | None = None,
        account: str | None = None,
        priority: Priority | PriorityName | None = None,
    ) -> str:
        """Enqueue one message; returns its job id (the first job's id for a known key)."""
        options = given_options(
            idempotency_key=idempotency_key,
            send_at=send_at,
            expires_at=expires_at,
            ttl_s=ttl_s,
            account=account,
            priority=priority,
        )
        now = time.time()
        job = build_job(Request(message, options), now=now, accounts=self.accounts)
        (result,) = await self.submit([job], now=now)
        return result.id

    async def enqueue_many(self, items: Iterable[Payload]) -> list[str]:
        """Validate all, then write all in one round trip; one bad item enqueues nothing."""
        now = time.time()
        jobs = validate_many(items, now=now, accounts=self.accounts)
        return [result.id for result in await self.submit(jobs, now=now)] if jobs else []

    async def submit(self, jobs: list[NewJob], *, now: float) -> list[Enqueued]:
        """Write validated jobs; Redis down or hung raises Unavailable within the timeout.

        After a timeout the jobs may have been written: enqueueing them again with the same
        idempotency keys is safe.
        """
        written = await self.write(jobs, now=now)
        return enqueued(jobs, written.ids)

    async def write(
        self, jobs: list[NewJob], *, now: float, batch_key: str | None = None
    ) -> Written:
        """``submit`` for a batch that may carry its own key (see ``AsyncJobStore.add``)."""
        try:
            async with asyncio.timeout(self.redis_timeout_s):
                return await self.jobs.add(jobs, now=now, batch_key=batch_key)
        except REDIS_DOWN as exc:
            raise self._unavailable(exc) from exc

    async def get(self, job_id: str) -> Job | None:
        """The job, or None; Unavailable when Redis does not answer in time."""
        try:
            async with asyncio.timeout(self.redis_timeout_s):
                return await self.jobs.get(job_id)
        except REDIS_DOWN as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> Unavailable:
        return Unavailable(
            timeout_s=self.redis_timeout_s, url=self.redis_url, problem=connection_problem(exc)
        )

    async def ready(self) -> bool:
        """Whether Redis answers within the timeout."""
        try:
            async with asyncio.timeout(self.redis_timeout_s):
                return await self.jobs.ping()
        except REDIS_DOWN:
            return False


def async_producer_for(settings: Settings, client: redis.asyncio.Redis) -> AsyncProducer:
    """The asyncio producer ``settings`` describe, writing through ``client`` (a fail-fast one, of
    the event loop it serves; the caller closes it)."""
    keys = Keys(settings.redis_prefix)
    replication = Replication(
        keys, replicas=settings.redis_min_replicas, timeout_s=settings.redis_timeout_s
    )
    return AsyncProducer(
        AsyncJobStore(client, keys, retention_s=settings.retention_s, replication=replication),
        accounts=known_accounts(settings.accounts_file),
        redis_timeout_s=settings.redis_timeout_s,
        redis_url=mask_url(settings.state_url),
    )
