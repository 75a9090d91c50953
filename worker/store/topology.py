"""How many primaries the store has, and how many replicas each has: one server's or a
Sentinel primary's from its INFO, a Redis Cluster's from CLUSTER NODES.

On a cluster a promised write waits for the replicas of the primary that took it (WAIT counts
only those), so the replicas said are the fewest any primary serving slots has: what every
write can count on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
import redis.cluster

# A node so flagged is not serving: failed, suspected of it, or not joined yet.
NOT_SERVING = frozenset({"fail", "fail?", "handshake", "noaddr"})


@dataclass(frozen=True)
class Nodes:
    """The store's primaries, and the replicas each has (the fewest, on a cluster)."""

    primaries: int
    replicas: int


def store_nodes(client: redis.Redis) -> Nodes:
    """The nodes serving the store now, as ``client``'s store says."""
    if isinstance(client, redis.cluster.RedisCluster):
        return cluster_nodes(client.cluster_nodes())
    replication: dict[str, Any] = client.info("replication")
    return Nodes(primaries=1, replicas=int(replication.get("connected_slaves", 0)))


def cluster_nodes(nodes: Mapping[str, Mapping[str, Any]]) -> Nodes:
    """The primaries serving slots and the fewest serving replicas one of them has, from
    CLUSTER NODES as redis-py reads it (``{"host:port": {"node_id", "flags", "master_id",
    "slots"…}}``)."""
    serving = [each for each in nodes.values() if not _flags(each) & NOT_SERVING]
    primaries = [each["node_id"] for each in serving if "master" in _flags(each) and each["slots"]]
    replicas = [each["master_id"] for each in serving if "slave" in _flags(each)]
    fewest = min((replicas.count(primary) for primary in primaries), default=0)
    return Nodes(primaries=len(primaries), replicas=fewest)


def _flags(node: Mapping[str, Any]) -> set[str]:
    return set(str(node["flags"]).split(","))
