"""The RabbitMQ this machine runs at 127.0.0.1:5672 (guest/guest), a vhost of the test's own.

Each user of ``Vhost`` creates its vhost and deletes it after, so runs never share queues.
``./run test`` starts RabbitMQ when it is not answering.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.processes import wait_for

RABBITMQCTL = "/usr/sbin/rabbitmqctl"
HOST = "127.0.0.1:5672"


def rabbitmqctl(*args: str, timeout_s: float = 60) -> str:
    """Run ``rabbitmqctl ARGS`` (quiet); its standard output, or an error naming the command."""
    done = subprocess.run(  # noqa: S603 - the broker's own tool
        [RABBITMQCTL, "-q", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        msg = f"rabbitmqctl {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}"
        raise RuntimeError(msg)
    return done.stdout


class Vhost:
    """One vhost on the shared RabbitMQ, with guest's full permissions on it."""

    def __init__(self, prefix: str = "msgworker-test") -> None:
        self.name = f"{prefix}-{secrets.token_hex(4)}"
        self.url = f"amqp://guest:guest@{HOST}/{self.name}"

    def create(self) -> None:
        rabbitmqctl("add_vhost", self.name)
        rabbitmqctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")

    def delete(self) -> None:
        rabbitmqctl("delete_vhost", self.name)

    def queue_types(self) -> dict[str, str]:
        """``{queue name: type}`` of every queue in the vhost (``classic``, ``quorum``...)."""
        return self._queues("type")

    def consumers(self, queue: str) -> int:
        """How many consumers ``queue`` has."""
        return int(self._queues("consumers").get(queue, 0))

    def ready(self, queue: str) -> int:
        """How many messages wait in ``queue`` for a consumer (not counting those delivered)."""
        return int(self._queues("messages_ready").get(queue, 0))

    def _queues(self, column: str) -> dict[str, str]:
        """``{queue name: column}`` of every queue in the vhost."""
        rows = rabbitmqctl("list_queues", "-p", self.name, "--no-table-headers", "name", column)
        return dict(line.split("\t") for line in rows.splitlines() if "\t" in line)

    def confirming_channels(self) -> int:
        """How many of the vhost's channels are in confirm mode (publisher confirms)."""
        rows = rabbitmqctl("list_channels", "--no-table-headers", "vhost", "confirm")
        return sum(1 for line in rows.splitlines() if line.split("\t") == [self.name, "true"])


@contextmanager
def vhost(prefix: str = "msgworker-test") -> Iterator[Vhost]:
    """A fresh vhost (its name starting ``prefix``) for the block, deleted after it."""
    created = Vhost(prefix)
    created.create()
    try:
        yield created
    finally:
        created.delete()


def running() -> bool:
    """Whether the RabbitMQ application answers (not merely its Erlang node)."""
    try:
        rabbitmqctl("await_startup", "--timeout", "1", timeout_s=20)
    except (RuntimeError, subprocess.TimeoutExpired):
        return False
    return True


@contextmanager
def stopped_app() -> Iterator[None]:
    """RabbitMQ's application stopped for the block (its node stays up): every connection drops
    and no new one is accepted. Started again after the block, whatever happened in it."""
    rabbitmqctl("stop_app")
    try:
        yield
    finally:
        rabbitmqctl("start_app", timeout_s=120)
        wait_for(running, timeout_s=60, interval_s=0.5, what="RabbitMQ started again")
