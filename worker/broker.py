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
tests/test_chaos.py::test_losing_redis_while_sends_are_in_flight_does_not_stop_the_worker.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from kombu import connection as kombu_connection
from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

# rediss:// stays with kombu's own transport: kombu turns TLS on by the scheme's name, and a
# transport of another name would connect without it.
REDIS_SCHEME = "redis"
TRANSPORT = f"{__name__}:Transport"

# kombu shows a connection's URL with the transport's name for scheme ("Connected to ..."):
# ours is shown as the redis it is. The table only names transports for display.
kombu_connection.resolve_aliases.setdefault(TRANSPORT, "redis")  # type: ignore[attr-defined]


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection is None or self.connection.client is None:
            msg = "this channel's broker connection was closed after a connection loss"
            raise RedisConnectionError(msg)
        # The stubs of celery-types leave this private method out.
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]
        return params


class Transport(kombu_redis.Transport):
    Channel = Channel


def transport_for(broker_url: str) -> str | None:
    """The transport to give Celery for ``broker_url``: ours for redis://, kombu's otherwise."""
    return TRANSPORT if urlsplit(broker_url).scheme == REDIS_SCHEME else None
