"""The producer API's functions: ``enqueue``, ``enqueue_many`` and their asyncio twins.

Every name they use is bound when this module is imported (no import inside a function), so
the ``msgworker`` alias package can load them even where an app's own ``worker`` package holds
that name. Settings are read on first use, not at import, and the producers are made here from
them: an app that enqueues loads none of the worker's side (service, send, observe).
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Iterable
from datetime import datetime
from functools import cached_property

from worker.producer import Payload, Priority, PriorityName, Producer, producer_for
from worker.producer_async import AsyncProducer, async_producer_for
from worker.settings import Settings, get_settings
from worker.store.connect import connect_async_fail_fast, connect_redis_fail_fast

__all__ = ["enqueue", "enqueue_async", "enqueue_many", "enqueue_many_async"]


def enqueue(
    message: Payload,
    *,
    idempotency_key: str | None = None,
    send_at: datetime | None = None,
    expires_at: datetime | None = None,
    ttl_s: float | None = None,
    account: str | None = None,
    priority: Priority | PriorityName | None = None,
) -> str:
    """Enqueue one message; returns its job id (the first job's id for a known idempotency key).

    ``message`` is a message model (``TextMessage``, ``TemplateMessage``, ...) or its JSON shape
    as a dict. ``send_at`` and ``expires_at`` are aware datetimes; give ``expires_at`` or
    ``ttl_s`` (seconds after it is due), not both. ``priority`` is ``high``, ``normal`` (the
    default) or ``bulk``. Raises ``InvalidMessage`` naming every bad field (nothing is
    enqueued), ``Unavailable`` when Redis does not answer within ``REDIS_TIMEOUT_S`` and
    ``StoreFull`` when Redis is out of memory.
    """
    return _current().producer.enqueue(
        message,
        idempotency_key=idempotency_key,
        send_at=send_at,
        expires_at=expires_at,
        ttl_s=ttl_s,
        account=account,
        priority=priority,
    )


def enqueue_many(items: Iterable[Payload]) -> list[str]:
    """Enqueue many in one round trip: a message, or ``{"message": message, **options}`` each.

    One invalid item enqueues nothing; the error names ``[index].field`` for every problem.
    """
    return _current().producer.enqueue_many(items)


async def enqueue_async(
    message: Payload,
    *,
    idempotency_key: str | None = None,
    send_at: datetime | None = None,
    expires_at: datetime | None = None,
    ttl_s: float | None = None,
    account: str | None = None,
    priority: Priority | PriorityName | None = None,
) -> str:
    """``enqueue`` for asyncio apps: the same checks and errors, without blocking the loop."""
    return await _async_producer().enqueue(
        message,
        idempotency_key=idempotency_key,
        send_at=send_at,
        expires_at=expires_at,
        ttl_s=ttl_s,
        account=account,
        priority=priority,
    )


async def enqueue_many_async(items: Iterable[Payload]) -> list[str]:
    """``enqueue_many`` for asyncio apps: validate all, then write all in one round trip."""
    return await _async_producer().enqueue_many(items)


class _Process:
    """This process's settings, read once, and its blocking producer, made on first use."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.settings: Settings = get_settings()

    @cached_property
    def producer(self) -> Producer:
        s = self.settings
        client = connect_redis_fail_fast(
            s.state_url, timeout_s=s.redis_timeout_s, sentinel_password=s.sentinel_password
        )
        return producer_for(s, client)


_process: _Process | None = None


def _current() -> _Process:
    """Made again after a fork: a connection is never shared across one."""
    global _process  # noqa: PLW0603 - one per process by design
    if _process is None or _process.pid != os.getpid():
        _process = _Process()
    return _process


# One asyncio producer per event loop: an asyncio connection belongs to the loop that made it.
_async_producers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncProducer] = (
    weakref.WeakKeyDictionary()
)


def _async_producer() -> AsyncProducer:
    loop = asyncio.get_running_loop()
    producer = _async_producers.get(loop)
    if producer is None:
        s = _current().settings
        client = connect_async_fail_fast(
            s.state_url, timeout_s=s.redis_timeout_s, sentinel_password=s.sentinel_password
        )
        producer = async_producer_for(s, client)
        _async_producers[loop] = producer
    return producer
