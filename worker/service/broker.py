"""kombu's Redis transport with one upstream fault closed: a worker must outlive a broker outage.

After a broker connection loss, Celery collects the kombu connection: that detaches the
channel from its transport, or the transport from its client, but leaves the channel behind.
Whatever touches that channel next asks for the broker's address through the detached parts
and fails with AttributeError, which Celery does not take for a connection error, so the
worker exits:

- a send that was in flight during the loss finishes and its late ack goes to the old channel
  (Celery 5.6 and 5.7);
- Celery 5.7.0 closes the collected connection, and the old channel restores its unacked
  messages on close.

Here the detached channel raises redis's ConnectionError instead, which Celery and kombu handle:
the ack is reported as impossible and the message stays unacked, so kombu gives it back after
the visibility timeout and the job's generation check drops it then (the send was settled in
Redis); the restore is skipped the same way. Regression test:
tests/system/test_chaos.py::test_losing_redis_while_sends_are_in_flight_does_not_stop_the_worker.

And a worker must outlive any bytes on its queue. kombu parses each item it pops as JSON and
builds a message from the object's fields, and any failure there stops the worker ("Unrecoverable
error"), so one bad item would stop one worker after the other. Here an item that is not JSON,
not a message envelope kombu can read, or too large is logged, counted and dropped before kombu
sees it; what kombu can read but Celery refuses (another serializer, no task, a body that does
not decode) is counted by ``RejectingConsumer``, after Celery's own log line and reject.
Regression test: tests/service/test_broker.py, the worker that drops any bytes on its queue.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from enum import StrEnum
from queue import Empty
from typing import Any
from urllib.parse import urlsplit

from celery.worker.consumer.consumer import Consumer
from kombu import connection as kombu_connection
from kombu import transport as kombu_transport
from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

from worker.logs import get_logger
from worker.urls import is_sentinel, parse_sentinel

log = get_logger(__name__)

# rediss:// stays with kombu's own transport: kombu turns TLS on by the scheme's name, and a
# transport of another name would connect without it.
REDIS_SCHEME = "redis"
TRANSPORT = f"{__name__}:Transport"
CONSUMER = f"{__name__}:RejectingConsumer"
SENTINEL_TRANSPORT = f"{__name__}:SentinelTransport"

# kombu shows a connection's URL with the transport's name for scheme ("Connected to ..."):
# ours is shown as the redis it is. The table only names transports for display.
kombu_connection.resolve_aliases.setdefault(TRANSPORT, "redis")  # type: ignore[attr-defined]
kombu_connection.resolve_aliases.setdefault(SENTINEL_TRANSPORT, "sentinel")  # type: ignore[attr-defined]
# kombu takes the sentinels for alternate brokers: after a connection loss it moves on to the
# next sentinel:// URL and resolves its transport by the scheme again, which would leave ours
# (and its repairs) behind. In a process of ours, the scheme names ours.
kombu_transport.TRANSPORT_ALIASES["sentinel"] = SENTINEL_TRANSPORT

# A task message carries at most a few (job id, generation) pairs: a few hundred bytes. Bodies
# beyond this are no message of ours and are not handed on.
BODY_MAX_CHARS = 1 << 20
# The body encodings kombu's Redis transport writes.
BODY_ENCODINGS = frozenset({"base64", "utf-8"})


class Rejected(StrEnum):
    """Why an item on the broker queue was dropped (the metric's bounded label)."""

    NOT_JSON = "not_json"
    NOT_ENVELOPE = "not_envelope"
    TOO_LARGE = "too_large"
    UNDECODABLE = "undecodable"  # an envelope whose body Celery could not decode
    NOT_A_TASK = "not_a_task"  # an envelope without a task Celery recognises
    REFUSED = "refused"  # a content type Celery does not accept (pickle), or a malformed task


def envelope_problem(payload: object) -> Rejected | None:
    """Why a JSON item popped from the queue is no message kombu can hand on, or None if it is."""
    if not isinstance(payload, Mapping):
        return Rejected.NOT_ENVELOPE
    properties = payload.get("properties")
    body = payload.get("body")
    if not isinstance(properties, Mapping) or not isinstance(body, str | None):
        return Rejected.NOT_ENVELOPE
    if body is not None and len(body) > BODY_MAX_CHARS:
        return Rejected.TOO_LARGE
    info = properties.get("delivery_info")
    encoding = properties.get("body_encoding")
    if (
        not isinstance(properties.get("delivery_tag"), str)
        or not isinstance(info, Mapping)
        or not all(isinstance(info.get(k), str) for k in ("exchange", "routing_key"))
        or not isinstance(payload.get("headers", {}), Mapping | None)
        or not all(
            isinstance(payload.get(k), str | None) for k in ("content-type", "content-encoding")
        )
        or (encoding is not None and encoding not in BODY_ENCODINGS)
    ):
        return Rejected.NOT_ENVELOPE
    if body and encoding == "base64":
        try:
            base64.b64decode(body, validate=True)
        except binascii.Error:
            return Rejected.NOT_ENVELOPE
    return None


def count_rejected(reason: Rejected, *, queue: str | None) -> None:
    """Log and count one dropped broker item (its content is not logged: it may be anything)."""
    log.warning("broker.message_rejected", reason=reason.value, queue=queue)
    from worker.observe.metrics import count_broker_rejected  # noqa: PLC0415 - prometheus only in workers

    count_broker_rejected(reason.value)


class Channel(kombu_redis.Channel):
    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        """One client per pool, not one per command: kombu makes a new one for every publish,
        unacked entry and ack, and each costs more CPU than the command (redis-py fills a table
        of 170 reply handlers), about 0.17 ms a broker message each time. A client over a pool
        is safe to share between threads; the pool is asked for every time, so a channel whose
        pool was dropped after a connection loss still fails as it does without the cache."""
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        pool = self.pool
        client = self._sync_client
        if client is None or client.connection_pool is not pool:
            client = self._sync_client = super()._create_client()  # type: ignore[misc]
        return client

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection is None or self.connection.client is None:
            msg = "this channel's broker connection was closed after a connection loss"
            raise RedisConnectionError(msg)
        # The stubs of celery-types leave this private method out.
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]
        return params

    # kombu pops an item, then parses it; a parse error is all that can leave these two before
    # the item reaches Transport._deliver. The item is off the list by then: dropping it is
    # only not raising. Empty is kombu's own "nothing to deliver".

    def _brpop_read(self, **options: Any) -> bool:
        try:
            delivered: bool = super()._brpop_read(**options)  # type: ignore[misc]
        except (UnicodeDecodeError, json.JSONDecodeError):
            count_rejected(Rejected.NOT_JSON, queue=None)
            raise Empty from None
        return delivered

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        del timeout  # the stubs' signature; kombu's Redis channel takes no timeout here
        try:
            return super()._get(queue)
        except (UnicodeDecodeError, json.JSONDecodeError):
            count_rejected(Rejected.NOT_JSON, queue=queue)
            raise Empty from None


class Transport(kombu_redis.Transport):
    Channel = Channel

    def _deliver(self, message: Any, queue: str | None) -> None:
        problem = envelope_problem(message)
        if problem is not None:
            count_rejected(problem, queue=queue)
            return
        super()._deliver(message, queue)


class RejectingConsumer(Consumer):
    """Celery's consumer, counting the messages it logs and drops as unusable, and without
    the native delayed delivery that no message of ours needs."""

    class Blueprint(Consumer.Blueprint):  # type: ignore[misc,valid-type] # stubs: a variable
        # No ETA or countdown is ever published (delays live in Redis): native delayed delivery
        # would only declare exchanges and queues on a RabbitMQ broker that nothing uses.
        default_steps = tuple(
            step
            for step in Consumer.Blueprint.default_steps
            if not step.endswith(":DelayedDelivery")
        )

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        super().on_decode_error(message, exc)
        count_rejected(Rejected.UNDECODABLE, queue=_queue_of(message))

    def on_unknown_message(self, body: Any, message: Any) -> None:
        super().on_unknown_message(body, message)
        count_rejected(Rejected.NOT_A_TASK, queue=_queue_of(message))

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        super().on_unknown_task(body, message, exc)
        count_rejected(Rejected.NOT_A_TASK, queue=_queue_of(message))

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        super().on_invalid_task(body, message, exc)
        count_rejected(Rejected.REFUSED, queue=_queue_of(message))


def _queue_of(message: Any) -> str | None:
    info = getattr(message, "delivery_info", None) or {}
    routing_key = info.get("routing_key") if isinstance(info, Mapping) else None
    return routing_key if isinstance(routing_key, str) else None


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """kombu's Sentinel channel (the primary found through the sentinels) with ours' repairs."""


class SentinelTransport(Transport, kombu_redis.SentinelTransport):
    Channel = SentinelChannel


def transport_for(broker_url: str) -> str | None:
    """The transport to give Celery for ``broker_url``: ours for redis:// and Sentinel, kombu's
    otherwise."""
    if is_sentinel(broker_url):
        return SENTINEL_TRANSPORT
    return TRANSPORT if urlsplit(broker_url).scheme == REDIS_SCHEME else None


def kombu_url(broker_url: str) -> str:
    """``broker_url`` as kombu reads it: a Sentinel URL becomes its list of sentinels."""
    return parse_sentinel(broker_url).kombu_url() if is_sentinel(broker_url) else broker_url


def sentinel_options(broker_url: str, *, password: str | None, timeout_s: float) -> dict[str, Any]:
    """The transport options a Sentinel broker needs (none for another): the primary's name,
    and how to talk to the sentinels."""
    if not is_sentinel(broker_url):
        return {}
    sentinels: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    if password is not None:
        sentinels["password"] = password
    return {"master_name": parse_sentinel(broker_url).service, "sentinel_kwargs": sentinels}
