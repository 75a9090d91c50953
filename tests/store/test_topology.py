"""worker/store/topology.py: a cluster's primaries and replicas counted from CLUSTER NODES as
redis-py reads it (the real cluster: tests/store/test_cluster_support.py)."""

from __future__ import annotations

from typing import Any

import pytest

from worker.store.topology import Nodes, cluster_nodes


def node(node_id: str, flags: str, master: str = "-", slots: int = 0) -> dict[str, Any]:
    return {
        "node_id": node_id,
        "flags": flags,
        "master_id": master,
        "slots": [["0", str(slots - 1)]] if slots else [],
    }


def view(*nodes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"10.0.0.{n}:7000": each for n, each in enumerate(nodes)}


def test_three_primaries_with_a_replica_each():
    """Each primary serving slots counts once; replicas are per primary."""
    nodes = view(
        node("a", "myself,master", slots=5461),
        node("b", "master", slots=5461),
        node("c", "master", slots=5462),
        *(node(f"{p}1", "slave", master=p) for p in "abc"),
    )
    assert cluster_nodes(nodes) == Nodes(primaries=3, replicas=1)


def test_the_replicas_said_are_the_fewest_a_primary_has():
    """One primary with two replicas, one with none: every write can count on none."""
    nodes = view(
        node("a", "master", slots=8192),
        node("b", "master", slots=8192),
        node("a1", "slave", master="a"),
        node("a2", "slave", master="a"),
    )
    assert cluster_nodes(nodes) == Nodes(primaries=2, replicas=0)


@pytest.mark.parametrize(
    "flags", ["master,fail", "master,fail?", "master,handshake", "master,noaddr"]
)
def test_a_primary_failed_or_not_joined_is_not_counted(flags):
    """A killed primary (failed, or only suspected yet) serves nothing."""
    nodes = view(node("a", "master", slots=8192), node("b", flags, slots=8192))
    assert cluster_nodes(nodes) == Nodes(primaries=1, replicas=0)


def test_a_primary_without_slots_and_a_failed_replica_are_not_counted():
    """An empty primary (not resharded into yet) serves no key; a failed replica holds no copy."""
    nodes = view(
        node("a", "master", slots=16384),
        node("e", "master"),
        node("a1", "slave", master="a"),
        node("a2", "slave,fail", master="a"),
    )
    assert cluster_nodes(nodes) == Nodes(primaries=1, replicas=1)


def test_no_primary_serving_is_zero_and_zero():
    """A cluster seen with nothing serving (all failed) says so rather than failing."""
    assert cluster_nodes(view(node("a", "master,fail", slots=16384))) == Nodes(0, 0)
