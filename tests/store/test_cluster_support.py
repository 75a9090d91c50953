"""Redis Cluster on a real cluster (three primaries, a replica each): the clients route each key
to its slot's primary and ride out a primary's failover; ``msgworker status`` counts the
cluster's nodes; a worker refuses a cluster store with one line and exit 78."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
import redis

from bench.sizing import primary_of
from tests.support.cluster import run_msgworker
from tests.support.processes import free_port
from tests.support.redis_cluster import HOST, LocalCluster
from worker.cli.exits import EXIT_CONFIG, EXIT_OK, EXIT_UNAVAILABLE
from worker.service.cluster import NO_BROKER, WORKERS_NOT_YET
from worker.store.connect import connect_async_fail_fast, connect_redis, connect_redis_fail_fast
from worker.store.topology import Nodes, store_nodes

pytestmark = [pytest.mark.processes, pytest.mark.timeout(180)]

KEYS = [f"cluster-test:{n}" for n in range(200)]
PASSWORD = "cluster-secret-7f3a"  # noqa: S105 - a test's own


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One cluster for the module; each test leaves it whole (a killed node back)."""
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"), primaries=3, replicas=1)
    cluster.start()
    yield cluster
    cluster.stop()


def command(tmp_path, *args: str, **settings: str):
    """`msgworker` run in an empty directory with only these MSGWORKER_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGWORKER_")}
    env.update({f"MSGWORKER_{name.upper()}": value for name, value in settings.items()})
    return run_msgworker(env, *args, cwd=tmp_path)


def keys_per_primary(cluster: LocalCluster) -> list[int]:
    counts = []
    for port in cluster.primaries():
        with redis.Redis(HOST, port, socket_timeout=1) as node:
            counts.append(len(node.keys("cluster-test:*")))
    return counts


def test_a_started_cluster_serves_every_slot_from_three_primaries_with_a_replica_each(cluster):
    """The helper's cluster is whole when started: every node says ok, 16384 slots served."""
    assert cluster.healthy(replicas=1)
    primaries = cluster.primaries()
    assert len(primaries) == 3
    assert all(len(replicas) == 1 for _, replicas in primaries.values())


def test_the_client_sends_each_key_to_its_slots_primary(cluster):
    """connect_redis on a redis+cluster:// URL is a cluster client: keys spread over every
    primary, and each reads back through the same client."""
    client = connect_redis(cluster.url)
    try:
        for n, key in enumerate(KEYS):
            client.set(key, n)
        assert [int(client.get(key)) for key in KEYS] == list(range(len(KEYS)))
        counts = keys_per_primary(cluster)
        assert sum(counts) == len(KEYS)
        assert min(counts) > 0  # every primary took some
    finally:
        client.delete(*KEYS)
        client.close()


def test_the_asyncio_client_reads_what_the_sync_client_wrote(cluster):
    """connect_async_fail_fast on a cluster URL routes by slot too."""
    writer = connect_redis_fail_fast(cluster.url, timeout_s=2)
    try:
        writer.mset_nonatomic({key: key.upper() for key in KEYS})

        async def read() -> list[str]:
            client = connect_async_fail_fast(cluster.url, timeout_s=2)
            try:
                return [str(await client.get(key)) for key in KEYS]
            finally:
                await client.aclose()

        assert asyncio.run(read()) == [key.upper() for key in KEYS]
    finally:
        writer.delete(*KEYS)
        writer.close()


def test_a_cluster_nobody_answers_is_a_connection_error_within_the_timeout():
    """No node answering: a ConnectionError (exit 69 for a command), not a hang or a crash."""
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        connect_redis_fail_fast(f"redis+cluster://{HOST}:{free_port()}", timeout_s=1)
    assert time.monotonic() - started < 5


def test_the_sizing_model_places_accounts_where_the_cluster_does(cluster):
    """bench/sizing.py's placement (CRC16 of the hash tag, slots split as redis-cli splits
    them) groups accounts as the real cluster's primaries serve them."""
    client = connect_redis_fail_fast(cluster.url, timeout_s=2)
    accounts = [f"account-{n}" for n in range(60)]
    served: dict[str, set[str]] = {}
    for account in accounts:
        node = client.get_node_from_key(f"{{{account}}}:anything")
        served.setdefault(node.name, set()).add(account)
    modelled: dict[int, set[str]] = {}
    for account in accounts:
        modelled.setdefault(primary_of(account, 3), set()).add(account)
    assert sorted(map(sorted, served.values())) == sorted(map(sorted, modelled.values()))
    assert len(served) == 3
    client.close()


def test_status_on_a_cluster_nobody_answers_is_one_line_and_exit_69(redis_server, tmp_path):
    """The cluster's client connects as it is made: still one line, the password masked."""
    url = f"redis+cluster://:{PASSWORD}@{HOST}:{free_port()}"
    done = command(
        tmp_path, "status", redis_url=url, broker_url=redis_server.url, redis_timeout_s="1"
    )
    assert done.returncode == EXIT_UNAVAILABLE
    assert done.stderr == f"msgworker: cannot reach Redis at {url.replace(PASSWORD, '***')}\n"


def test_a_plain_redis_named_as_a_cluster_is_a_settings_error(redis_server, tmp_path):
    """redis+cluster:// to a server without cluster mode: exit 78 saying to use redis://, not
    an outage."""
    url = redis_server.url.replace("redis://", "redis+cluster://", 1)
    done = command(tmp_path, "status", redis_url=url, broker_url=redis_server.url)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "is a Redis server, not a cluster: give it as redis://" in done.stderr


def test_status_says_cluster_with_its_primaries_and_replicas(cluster, redis_server, tmp_path):
    """`msgworker status --json` on a cluster store with a Redis broker."""
    done = command(tmp_path, "status", "--json", redis_url=cluster.url, broker_url=redis_server.url)
    assert done.returncode == EXIT_OK, done.stderr
    status = json.loads(done.stdout)
    assert status["store"] == {"kind": "cluster", "primaries": 3, "replicas": 1}
    assert status["broker"] == {"kind": "redis"}
    assert status["redis"].startswith("redis+cluster://")


def test_status_in_words_says_the_primaries_and_the_replicas_each_has(
    cluster, redis_server, tmp_path
):
    """The plain `msgworker status` line for a cluster store."""
    done = command(tmp_path, "status", redis_url=cluster.url, broker_url=redis_server.url)
    assert done.returncode == EXIT_OK, done.stderr
    assert "cluster: 3 primaries, at least 1 replica each" in done.stdout


def test_status_without_a_broker_on_a_cluster_is_one_line_and_exit_78(cluster, tmp_path):
    """kombu has no Cluster transport: BROKER_URL must be given, and the refusal says so."""
    done = command(tmp_path, "status", redis_url=cluster.url)
    assert done.returncode == EXIT_CONFIG
    assert done.stderr == f"msgworker: {NO_BROKER}\n"


def test_a_worker_without_a_broker_on_a_cluster_exits_78_saying_broker_url_must_be_set(
    cluster, tmp_path
):
    """The broker's absence is said first: it stays true once workers are supported."""
    done = command(tmp_path, "worker", redis_url=cluster.url)
    assert done.returncode == EXIT_CONFIG
    assert done.stderr == f"msgworker: {NO_BROKER}\n"


def test_a_worker_on_a_cluster_exits_78_saying_it_is_not_supported_yet(
    cluster, redis_server, tmp_path
):
    """With a broker, a worker still refuses: the send path is not ready for a cluster."""
    done = command(tmp_path, "worker", redis_url=cluster.url, broker_url=redis_server.url)
    assert done.returncode == EXIT_CONFIG
    assert done.stderr == f"msgworker: {WORKERS_NOT_YET}\n"
    assert "not supported yet" in done.stderr


def test_a_killed_primary_is_replaced_by_its_replica_and_the_client_carries_on(cluster):
    """SIGKILL a primary: its replica takes its slots within the node timeout and a few
    seconds; a worker's client reads the killed primary's keys again without a restart;
    the nodes counted show the primary that has no replica left until the node comes back."""
    client = connect_redis(cluster.url)
    client.mset_nonatomic(dict.fromkeys(KEYS, "before"))
    old, replicas = cluster.kill_primary()
    try:
        took_s = cluster.wait_failover(old, replicas)
        assert took_s < 15
        assert {client.get(key) for key in KEYS} == {"before"}  # its slots answered again
        assert store_nodes(client) == Nodes(primaries=3, replicas=0)
    finally:
        cluster.bring_back(old)
    assert store_nodes(client) == Nodes(primaries=3, replicas=1)
    client.close()
