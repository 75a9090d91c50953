"""A Redis Cluster of N primaries with R replicas each, on free ports, for Cluster tests.

The machine's redis-server runs each node in cluster mode; ``redis-cli --cluster create`` (the
redis-cli beside it) joins them and spreads the 16384 slots. Nodes are judged failed after
``NODE_TIMEOUT_MS``, so a killed primary's replica takes over within a few seconds. The bus
port of each node is a free port of its own: ``port + 10000`` may be past 65535, or taken.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.processes import free_port, redis_server_binary, wait_for
from tests.support.sentinel import HOST, Node, replicas_online
from worker.store.topology import NOT_SERVING

SLOTS = 16384
NODE_TIMEOUT_MS = 2000


@dataclass(frozen=True)
class ClusterView:
    """What one node says of the cluster: its state, and who serves which slots."""

    ok: bool
    # Each primary serving slots (by port): how many slots, and its replicas' ports.
    primaries: dict[int, tuple[int, frozenset[int]]]


def cluster_view(port: int) -> ClusterView | None:
    """The view of the node at ``port``, None when it does not answer."""
    try:
        with redis.Redis(HOST, port, socket_timeout=0.5, decode_responses=True) as client:
            info = client.cluster("INFO")
            nodes = client.cluster("NODES")  # redis-py reads it: {"host:port": {...}}
    except redis.RedisError:
        return None
    serving = {
        each["node_id"]: (int(address.rpartition(":")[2]), each)
        for address, each in nodes.items()
        if not set(each["flags"].split(",")) & NOT_SERVING
    }
    replicas: dict[str, set[int]] = {}
    for port_of, each in serving.values():
        if "slave" in each["flags"]:
            replicas.setdefault(each["master_id"], set()).add(port_of)
    primaries = {
        port_of: (served, frozenset(replicas.get(node_id, ())))
        for node_id, (port_of, each) in serving.items()
        if "master" in each["flags"]
        and (served := sum(int(span[-1]) - int(span[0]) + 1 for span in each["slots"]))
    }
    return ClusterView(info["cluster_state"] == "ok", primaries)


class LocalCluster:
    """``primaries`` primaries with ``replicas`` replicas each, each node its own redis-server."""

    def __init__(self, directory: Path, *, primaries: int = 3, replicas: int = 1) -> None:
        self.directory = directory
        self.replicas = replicas
        ports: set[int] = set()
        while len(ports) < 2 * primaries * (1 + replicas):  # a client port and a bus port each
            ports.add(free_port())
        pairs = iter(sorted(ports))
        self.nodes = [
            self._node(n, port, bus)
            for n, (port, bus) in enumerate(zip(pairs, pairs, strict=False))
        ]

    def _node(self, number: int, port: int, bus_port: int) -> Node:
        node = Node(port, self.directory / f"node-{number}")
        node.args = [
            *("--port", str(port), "--bind", HOST, "--dir", str(node.directory)),
            *("--protected-mode", "no", "--save", "", "--appendonly", "no"),
            *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
            *("--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--cluster-port", str(bus_port)),
        ]
        return node

    @property
    def url(self) -> str:
        """The store URL naming every node (a client needs one that answers)."""
        return "redis+cluster://" + ",".join(f"{HOST}:{node.port}" for node in self.nodes)

    def start(self, timeout_s: float = 60) -> None:
        for node in self.nodes:
            node.start()
        redis_cli = Path(redis_server_binary()).with_name("redis-cli")
        subprocess.run(  # noqa: S603 - our binary, our arguments
            [
                str(redis_cli),
                "--cluster",
                "create",
                *(f"{HOST}:{node.port}" for node in self.nodes),
                *("--cluster-replicas", str(self.replicas), "--cluster-yes"),
            ],
            capture_output=True,
            check=True,
            timeout=timeout_s,
        )
        self.wait_healthy(timeout_s=timeout_s)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    # ------------------------------------------------------------- looking

    def running(self) -> list[Node]:
        return [node for node in self.nodes if node.process is not None]

    def node(self, port: int) -> Node:
        (found,) = [node for node in self.nodes if node.port == port]
        return found

    def views(self) -> list[ClusterView | None]:
        return [cluster_view(node.port) for node in self.running()]

    def primaries(self) -> dict[int, tuple[int, frozenset[int]]]:
        """The primaries serving slots as the first running node sees them."""
        for view in self.views():
            if view is not None:
                return view.primaries
        return {}

    def healthy(self, replicas: int) -> bool:
        """Every running node says cluster_state:ok and sees all slots served by running
        primaries, each with ``replicas`` running replicas whose replication link is up."""
        running = {node.port for node in self.running()}
        views = self.views()
        if not views:
            return False
        for view in views:
            if view is None or not view.ok or not set(view.primaries) <= running:
                return False
            if sum(count for count, _ in view.primaries.values()) != SLOTS:
                return False
            if any(len(attached & running) < replicas for _, attached in view.primaries.values()):
                return False
        return all(replicas_online(HOST, port) >= replicas for port in self.primaries())

    def wait_healthy(self, replicas: int | None = None, timeout_s: float = 30) -> None:
        wanted = self.replicas if replicas is None else replicas
        wait_for(
            lambda: self.healthy(wanted),
            timeout_s=timeout_s,
            interval_s=0.1,
            what="the cluster healthy",
        )

    # ------------------------------------------------------------- failing

    def kill_primary(self) -> tuple[int, frozenset[int]]:
        """SIGKILL one primary; its port and its replicas' ports."""
        port, (_, replicas) = min(self.primaries().items())
        self.node(port).kill()
        return port, replicas

    def wait_failover(self, old: int, replicas: frozenset[int], timeout_s: float = 30) -> float:
        """Seconds until one of ``old``'s replicas serves its slots and every running node says
        the cluster is ok again."""
        started = time.monotonic()

        def promoted() -> bool:
            views = self.views()
            return bool(views) and all(
                view is not None
                and view.ok
                and old not in view.primaries
                and bool(set(view.primaries) & replicas)
                for view in views
            )

        wait_for(promoted, timeout_s=timeout_s, interval_s=0.05, what="a replica promoted")
        return time.monotonic() - started

    def bring_back(self, port: int) -> None:
        """Start the node at ``port`` again: it rejoins as a replica of its replacement."""
        self.node(port).start()
        self.wait_healthy()
