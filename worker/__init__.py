"""msgworker: resilient WhatsApp message sending through the Connexease Gateway.

``from worker import enqueue, enqueue_many`` is the producer API; settings come from the
environment (``MSGWORKER_*``) on first use.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["enqueue", "enqueue_many"]


def enqueue(message: Any, **options: Any) -> str:
    """Enqueue one message; returns its job id (the first job's id for a known idempotency key).

    Options: ``idempotency_key``, ``send_at`` (aware datetime), ``expires_at`` or ``ttl_s``,
    ``account``. Raises ``worker.errors.InvalidMessage`` naming every bad field, and
    ``worker.errors.Unavailable`` when Redis does not answer within ``REDIS_TIMEOUT_S``.
    """
    from worker.service.runtime import current_runtime  # noqa: PLC0415 - no settings read at import

    return current_runtime().producer.enqueue(message, **options)


def enqueue_many(items: Iterable[Any]) -> list[str]:
    """Enqueue many in one round trip: a payload or ``{"message": payload, **options}`` each.

    One invalid item enqueues nothing; the error names ``[index].field`` for every problem.
    """
    from worker.service.runtime import current_runtime  # noqa: PLC0415

    return current_runtime().producer.enqueue_many(items)
