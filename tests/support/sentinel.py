"""A Redis primary, its replicas and three sentinels on free ports, for failover tests.

Failovers are quick here (the primary is judged down after ``down_after_ms``, a failover may be
retried after ``failover_timeout_ms``), so a test sees one within a few seconds. A killed
primary comes back as a replica of the new one, as an operator's supervisor would bring it back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.support.netns import Link
from tests.support.processes import free_port, redis_server_binary, wait_for

SERVICE = "msgworker-primary"
HOST = "127.0.0.1"


@dataclass
class Node:
    """One redis-server (a data node or a sentinel) of the group."""

    port: int
    directory: Path
    host: str = HOST
    # Runs the server elsewhere, such as in a network namespace (the prefix execs it).
    prefix: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    args: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "server.log").open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our binary, our arguments
                [*self.prefix, redis_server_binary(), *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.answers, timeout_s=10, what=f"redis-server on port {self.port}")

    def answers(self) -> bool:
        try:
            with redis.Redis(self.host, self.port, socket_timeout=0.5) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def signal(self, number: signal.Signals) -> None:
        assert self.process is not None
        os.kill(self.process.pid, number)

    def kill(self) -> None:
        """SIGKILL: the process dies with whatever it had not written or sent."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


def replicas_online(host: str, port: int) -> int:
    """How many replicas the node at ``host:port`` has online (0 when it does not answer)."""
    try:
        with redis.Redis(host, port, socket_timeout=0.5, decode_responses=True) as client:
            info = client.info("replication")
    except redis.RedisError:
        return 0
    return sum(
        1
        for key, value in info.items()
        if key.startswith("slave") and isinstance(value, dict) and value["state"] == "online"
    )


class SentinelGroup:
    """A primary with ``replicas`` replicas, watched by three sentinels (quorum 2).

    With a ``link``, the first primary runs in the link's namespace and the other nodes listen
    on this host's end of it too, so each side reaches the other until the link is cut."""

    def __init__(
        self,
        directory: Path,
        *,
        replicas: int = 2,
        down_after_ms: int = 2000,
        failover_timeout_ms: int = 6000,
        link: Link | None = None,
    ) -> None:
        self.directory = directory
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.nodes = [Node(free_port(), directory / f"node-{n}") for n in range(replicas + 1)]
        self.sentinels = [Node(free_port(), directory / f"sentinel-{n}") for n in range(3)]
        # The addresses the nodes of this host listen on.
        self.listen = HOST
        if link is not None:
            self.nodes[0].host, self.nodes[0].prefix = link.inside, link.prefix
            self.listen = f"{link.outside} {HOST}"

    @property
    def url(self) -> str:
        hosts = ",".join(f"{HOST}:{node.port}" for node in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> None:
        primary, *replicas = self.nodes
        self._start_node(primary, replica_of=None)
        for node in replicas:
            self._start_node(node, replica_of=primary)
        for node in self.sentinels:
            config = node.directory / "sentinel.conf"
            node.directory.mkdir(parents=True, exist_ok=True)
            config.write_text(
                "\n".join(
                    [
                        f"port {node.port}",
                        f"bind {self.listen}",
                        "protected-mode no",
                        f"dir {node.directory}",
                        f"sentinel monitor {SERVICE} {primary.host} {primary.port} 2",
                        f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}",
                        f"sentinel failover-timeout {SERVICE} {self.failover_timeout_ms}",
                        f"sentinel parallel-syncs {SERVICE} 2",
                        "",
                    ]
                )
            )
            node.args = [str(config), "--sentinel"]
            node.start()
        self.wait_settled(primary.port)

    def _start_node(self, node: Node, *, replica_of: Node | None) -> None:
        bind = node.host if node.prefix else self.listen  # one run elsewhere has one address
        node.args = [
            *("--port", str(node.port), "--bind", *bind.split(), "--dir", str(node.directory)),
            # Bound to private addresses only; protected mode would refuse the far side of a link.
            *("--protected-mode", "no"),
            *("--save", "", "--appendonly", "yes", "--appendfsync", "everysec"),
            *(("--replicaof", replica_of.host, str(replica_of.port)) if replica_of else ()),
        ]
        node.start()

    def stop(self) -> None:
        for node in [*self.sentinels, *self.nodes]:
            node.stop()

    # ------------------------------------------------------------- looking

    def primary_port(self) -> int | None:
        """The primary the sentinels name now (the first that answers), None if none does."""
        for node in self.sentinels:
            try:
                with redis.Redis(port=node.port, socket_timeout=0.5) as client:
                    address = client.sentinel_get_master_addr_by_name(SERVICE)
            except redis.RedisError:
                continue
            if address:
                return int(address[1])
        return None

    def node(self, port: int) -> Node:
        (found,) = [node for node in self.nodes if node.port == port]
        return found

    def role(self, port: int) -> str | None:
        try:
            host = self.node(port).host
            with redis.Redis(host, port, socket_timeout=0.5, decode_responses=True) as client:
                return str(client.role()[0])
        except redis.RedisError:
            return None

    def replicas_in_sync(self, port: int) -> int:
        """How many replicas the node at ``port`` has online."""
        return replicas_online(self.node(port).host, port)

    def wait_settled(
        self, primary: int, replicas: int | None = None, timeout_s: float = 30
    ) -> None:
        """Every sentinel names ``primary``, knows the other sentinels and its replicas, and has
        no failover under way; the primary has its replicas online. Sentinels that have not
        found each other yet would each fail over alone."""
        wanted = len(self.nodes) - 1 if replicas is None else replicas

        def settled() -> bool:
            return (
                all(self._calm(node, primary, wanted) for node in self.sentinels)
                and self.role(primary) == "master"
                and self.replicas_in_sync(primary) >= wanted
            )

        wait_for(settled, timeout_s=timeout_s, interval_s=0.1, what="the group settled")

    def _calm(self, sentinel: Node, primary: int, replicas: int) -> bool:
        try:
            with redis.Redis(port=sentinel.port, socket_timeout=0.5, decode_responses=True) as c:
                state = c.sentinel_master(SERVICE)
        except redis.RedisError:
            return False
        return (
            int(state["port"]) == primary
            and state["flags"] == "master"
            and int(state["num-other-sentinels"]) == len(self.sentinels) - 1
            and int(state["num-slaves"]) >= replicas
        )

    def _named_by(self, sentinel: Node) -> int | None:
        try:
            with redis.Redis(port=sentinel.port, socket_timeout=0.5) as client:
                address = client.sentinel_get_master_addr_by_name(SERVICE)
        except redis.RedisError:
            return None
        return int(address[1]) if address else None

    # ------------------------------------------------------------- failing

    def kill_primary(self) -> int:
        """SIGKILL the primary; returns its port."""
        port = self.primary_port()
        assert port is not None, "no primary to kill"
        self.node(port).kill()
        return port

    def wait_failover(self, old: int, timeout_s: float = 30) -> tuple[int, float]:
        """The new primary's port once every sentinel names the same other node and it takes
        writes, and the seconds that took."""
        started = time.monotonic()

        def promoted() -> int | None:
            named = {self._named_by(node) for node in self.sentinels}
            if len(named) != 1:  # the sentinels do not agree yet
                return None
            (port,) = named
            return port if port not in {None, old} and self.role(port) == "master" else None

        port = wait_for(promoted, timeout_s=timeout_s, interval_s=0.05, what="a failover")
        return port, time.monotonic() - started

    def bring_back(self, port: int) -> None:
        """Start the node at ``port`` again, as a replica of the current primary."""
        primary = self.primary_port()
        assert primary is not None
        assert primary != port
        self._start_node(self.node(port), replica_of=self.node(primary))
