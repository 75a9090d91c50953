"""RabbitMQ as the broker (``amqp://``, ``amqps://``): what is declared, and how it is published.

- The queue is a quorum queue (``x-queue-type: quorum``): replicated over the RabbitMQ cluster
  and kept on disk, so it outlives the node that holds it, where a classic queue is lost with it.
  Queues named with ``-Q`` that the worker creates are quorum queues too.
- Every publish waits for the broker's confirm: a dispatch the pump counts as sent is on the
  queue, not in a socket buffer of a broker that may fail next.
- Quorum queues refuse a global QoS (prefetch per channel): Celery's quorum-queue detection
  applies the prefetch per consumer instead, and is kept on here whatever a user's config says.
- No ETA or countdown is ever published (delays live in Redis), so Celery's native delayed
  delivery, which declares its own exchanges and a dozen queues on a quorum-queue broker, is left
  out of the consumer (``worker.service.broker.RejectingConsumer``).

The dispatches are all that travel through RabbitMQ: the jobs and their state stay in Redis.
"""

from __future__ import annotations

from typing import Any

QUEUE_TYPE = "quorum"


def amqp_conf() -> dict[str, Any]:
    """Celery settings for a RabbitMQ broker (merged over the app's own)."""
    return {
        "task_default_queue_type": QUEUE_TYPE,
        "task_create_missing_queue_type": QUEUE_TYPE,
        "worker_detect_quorum_queues": True,
        "broker_transport_options": {"confirm_publish": True},
    }
