"""Losing the Redis primary under load, with a Sentinel group the module starts (a primary, two
replicas, three sentinels): workers, producers and commands find the new primary by themselves;
no job whose enqueue returned is lost. bench/failover.py runs the same scenario full size.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tests.support import chaos, failover, netns
from tests.support.sentinel import SentinelGroup

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.timeout(400)]

# The acceptance run itself (bench/failover.py runs it at other sizes and rates).
JOBS = 1000
KILLS = 3
RATE_PER_SEC = 30  # the account's limit: the workers send at it


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    """One Sentinel group for the module; each scenario leaves it whole."""
    group = SentinelGroup(tmp_path_factory.mktemp("sentinel"))
    group.start()
    yield group
    group.stop()


def test_status_names_the_sentinel_store_and_broker_and_counts_the_replicas(group, tmp_path):
    """`msgworker status --json` through the sentinels: store and broker kinds, 1 primary and 2
    replicas; kombu's own sentinel:// form is one line naming the variable, exit 78."""
    with chaos.staged(group.url, tmp_path) as stage:
        code, out, err = stage.msgworker("status", "--json")
        assert code == 0, err
        view = json.loads(out)
        assert view["store"] == {"kind": "sentinel", "primaries": 1, "replicas": 2}
        assert view["broker"] == {"kind": "sentinel"}
        code, out, err = stage.msgworker("status", broker_url="sentinel://h:1;sentinel://h:2")
        assert code == 78
        assert err.count("\n") == 1
        assert "MSGWORKER_BROKER_URL" in err
        assert "Traceback" not in err


def test_three_primary_kills_under_load_lose_nothing_and_restart_nothing(group, tmp_path):
    """Two workers at the account's limit, the primary SIGKILLed three times (each time back as a
    replica): every job sent, duplicates only within the calls in flight at the kills, nothing
    stuck, no worker restarted, sending back within the failover time + 5 s."""
    with chaos.staged(group.url, tmp_path) as stage:
        result = failover.under_load(
            stage, group, jobs=JOBS, kills=KILLS, rate_per_sec=RATE_PER_SEC
        )
        print("\n" + json.dumps(result.summary()))  # noqa: T201 - the figures, for the record
        report, figures = result.report, result.figures
        assert not report.lost, report.lost
        assert report.pending == []
        assert len(report.sent) == JOBS
        duplicates = len(report.ambiguous_duplicates) + len(report.real_duplicates)
        assert duplicates <= KILLS * failover.WORKERS * failover.CONCURRENCY
        assert figures["worker_exits"] == 0
        assert len(stage.workers) == failover.WORKERS
        for took, after in zip(figures["failover_s"], figures["resumed_after_kill_s"], strict=True):
            assert after <= took + 5, figures
        assert figures["failovers_seen"], "no worker exported msgworker_redis_failovers_total"
        assert all(seen >= 1 for seen in figures["failovers_seen"]), figures


def test_producers_through_a_kill_get_an_id_or_unavailable_and_never_a_second_job(group, tmp_path):
    """20 threads enqueueing with idempotency keys while the primary is killed: each call
    returns the key's one job id, or raises Unavailable within REDIS_TIMEOUT_S; every id
    returned is sent."""
    with chaos.staged(group.url, tmp_path, latency_ms=20) as stage:
        for n in range(failover.WORKERS):
            stage.start(f"p{n}", redis_min_replicas=failover.MIN_REPLICAS)
        producers = failover.KeyedProducers(group.url, threads=20, keys_each=20)
        started = threading.Event()
        running = threading.Thread(target=producers.run, args=(started,))
        running.start()
        assert started.wait(timeout=60)
        failover.fail_over(group)
        running.join(timeout=300)
        assert producers.failures == []
        assert len(producers.returned) == 20 * 20
        assert all(len(ids) == 1 for ids in producers.returned.values()), "a key made two jobs"
        assert max(producers.refusals_s, default=0) <= failover.TIMEOUT_S + 1, producers.refusals_s
        ids = [next(iter(ids)) for ids in producers.returned.values()]
        chaos.settle(stage, timeout_s=180)
        report = chaos.finish(stage, "keyed producers through a kill", ids, {}).report
        print("\n" + json.dumps({"refusals": len(producers.refusals_s), **report.counts()}))  # noqa: T201
        assert not report.lost, report.lost
        assert len(report.sent) == len(ids)
        assert report.pending == []


def test_a_primary_cut_off_for_ten_seconds_loses_nothing_and_sends_nothing_twice_by_itself(
    group, tmp_path
):
    """The primary's link to everything else cut 10 s mid-run (a veth pair to a namespace of its
    own, taken down; SIGSTOP where no namespace can be made): the sentinels promote a replica,
    the healed old primary is demoted; every job sent, none lost, repeats only among the calls
    in flight at the cut."""
    if not netns.available():
        primary = group.primary_port()
        assert primary is not None
        _cut_off(group, failover.Freeze(group.node(primary)), tmp_path)
        return
    with netns.namespace() as link:
        behind_link = SentinelGroup(tmp_path / "sentinel", link=link)
        try:
            behind_link.start()
            _cut_off(behind_link, link, tmp_path)
        finally:
            behind_link.stop()


def _cut_off(group: SentinelGroup, partition: failover.Partition, tmp_path: Path) -> None:
    with chaos.staged(group.url, tmp_path) as stage:
        result = failover.primary_cut_off(
            stage, group, partition, jobs=300, cut_s=10, rate_per_sec=RATE_PER_SEC
        )
        print("\n" + json.dumps(result.summary()))  # noqa: T201 - the figures, for the record
        report, figures = result.report, result.figures
        assert not report.lost, report.lost
        assert report.real_duplicates == {}
        assert report.pending == []
        assert len(report.sent) == 300
        assert len(report.ambiguous_duplicates) <= failover.WORKERS * failover.CONCURRENCY
        assert figures["worker_exits"] == 0
