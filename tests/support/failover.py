"""Sentinel failovers under load, sized by their caller: CI runs them small
(tests/system/test_sentinel_failover.py), bench/failover.py full size.

Each scenario drives a chaos `Stage` whose Redis URL is a Sentinel group's, kills the primary
with SIGKILL (or cuts it off) while workers send and producers enqueue, brings it back as a
replica, and returns a `chaos.Result` with the figures: how long each failover took, the gap
in sending it caused (last accepted send before the kill to the first after), the calls in
flight at each kill.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Protocol

from tests.support import chaos
from tests.support.processes import wait_for
from tests.support.sentinel import Node, SentinelGroup
from worker.errors import Unavailable
from worker.service.runtime import Runtime
from worker.settings import Settings

WORKERS = 2
CONCURRENCY = 8
TIMEOUT_S = 2.0
# The workers and producers wait for one replica: no job whose enqueue returned is lost.
MIN_REPLICAS = "1"
# A call already past its Redis round trips at the kill reaches the sandbox within this.
IN_FLIGHT_S = 0.25
_FAILOVERS = re.compile(r"^msgworker_redis_failovers_total (\S+)$", re.MULTILINE)


def producer_runtime(url: str) -> Runtime:
    """A producer's runtime on the group: fail fast, one replica required."""
    settings = Settings(
        broker_url=url, redis_timeout_s=TIMEOUT_S, redis_min_replicas=1, _env_file=None
    )
    return Runtime(settings, fail_fast=True)


def claims_now(stage: chaos.Stage) -> int:
    """Jobs claimed by a worker right now: the calls in flight, at most."""
    pattern = f"{stage.runtime.keys.prefix}claim:*"
    return sum(1 for _ in stage.runtime.redis.scan_iter(match=pattern, count=1000))


def fail_over(group: SentinelGroup) -> tuple[float, float]:
    """SIGKILL the primary, wait for the new one, bring the old one back as its replica;
    returns (when killed, seconds until every sentinel named the new primary)."""
    killed_at = time.time()
    old = group.kill_primary()
    new, took = group.wait_failover(old, timeout_s=60)
    group.bring_back(old)
    group.wait_settled(new, timeout_s=60)
    return killed_at, took


def gaps(stage: chaos.Stage, kills: list[float]) -> list[tuple[float, float]]:
    """For each kill: (the gap from the Gateway's last request before it to its first request
    begun after it, and that first request counted from the kill). With REDIS_MIN_REPLICAS a
    call goes out only after a round trip to the primary, so a request arriving later than
    ``IN_FLIGHT_S`` after the kill was begun on the new primary."""
    times = sorted(float(r["at"]) for r in stage.sandbox.requests())
    found = []
    for killed_at in kills:
        before = max((t for t in times if t <= killed_at), default=killed_at)
        after = min((t for t in times if t > killed_at + IN_FLIGHT_S), default=float("inf"))
        found.append((after - before, after - killed_at))
    return found


def failovers_seen(stage: chaos.Stage) -> list[float]:
    """msgworker_redis_failovers_total of each live worker."""
    return [
        float(match.group(1))
        for exposition in stage.expositions()
        for match in _FAILOVERS.finditer(exposition)
    ]


def under_load(
    stage: chaos.Stage,
    group: SentinelGroup,
    *,
    jobs: int,
    kills: int,
    rate_per_sec: int,
    settle_timeout_s: float = 180,
) -> chaos.Result:
    """Two workers send ``jobs`` at the account's limit; the primary is killed ``kills`` times,
    evenly through the run; nothing is restarted but the killed Redis."""
    stage.sandbox.configure(rate_per_sec=rate_per_sec, latency_ms=50)
    for n in range(WORKERS):
        stage.start(f"s{n}", concurrency=CONCURRENCY, metrics=True, redis_min_replicas=MIN_REPLICAS)
    producer = producer_runtime(group.url)
    ids: list[str] = []
    for first in range(0, jobs, 500):
        batch = [{"message": chaos.text(n)} for n in range(first, min(first + 500, jobs))]
        ids += producer.producer.enqueue_many(batch)
    producer.close()
    killed: list[float] = []
    failover_s: list[float] = []
    in_flight: list[int] = []
    for k in range(kills):
        target = (k + 1) * jobs // (kills + 1)
        wait_for(
            lambda t=target: stage.sandbox.stats()["accepted"] >= t,
            timeout_s=settle_timeout_s,
            interval_s=0.1,
            what=f"{target} sent",
        )
        in_flight.append(claims_now(stage))
        killed_at, took = fail_over(group)
        killed.append(killed_at)
        failover_s.append(took)
    stranded = chaos.settle(stage, timeout_s=settle_timeout_s)
    measured = gaps(stage, killed)
    figures = {
        "kills": kills,
        "failover_s": [round(s, 2) for s in failover_s],
        "gap_s": [round(gap, 2) for gap, _ in measured],
        "resumed_after_kill_s": [round(after, 2) for _, after in measured],
        "claims_at_kill": in_flight,
        "worker_exits": sum(1 for w in stage.workers if w.process.poll() is not None),
        "failovers_seen": failovers_seen(stage),
        "stranded_dispatches": stranded,
    }
    return chaos.finish(stage, "Sentinel failover under load", ids, figures)


@dataclass
class KeyedProducers:
    """Threads enqueueing with idempotency keys, each key retried until it returns an id."""

    url: str
    threads: int
    keys_each: int
    pause_s: float = 0.3
    returned: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    refusals_s: list[float] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)

    def run(self, during: threading.Event) -> None:
        """Run every thread to its end; ``during`` is set once the first keys are in."""
        runtime = producer_runtime(self.url)
        started = [
            threading.Thread(target=self._one, args=(runtime, n, during))
            for n in range(self.threads)
        ]
        for thread in started:
            thread.start()
        for thread in started:
            thread.join(timeout=300)
        runtime.close()

    def _one(self, runtime: Runtime, n: int, during: threading.Event) -> None:
        try:
            for i in range(self.keys_each):
                key = f"p{n}-{i}"
                while True:
                    began = time.monotonic()
                    try:
                        self.returned[key].add(
                            runtime.producer.enqueue(chaos.text(key, "keyed"), idempotency_key=key)
                        )
                        # The same key again: the same job, never a second one.
                        self.returned[key].add(
                            runtime.producer.enqueue(chaos.text(key, "keyed"), idempotency_key=key)
                        )
                        break
                    except Unavailable:
                        self.refusals_s.append(time.monotonic() - began)
                        time.sleep(0.1)
                if i == 1:
                    during.set()
                time.sleep(self.pause_s)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.failures.append(exc)


class Partition(Protocol):
    """Cuts the primary off from everything else, and heals the cut."""

    def cut(self) -> None: ...

    def heal(self) -> None: ...


@dataclass
class Freeze:
    """The stand-in for a partition where no network namespace can be made: the primary
    stopped (SIGSTOP) answers nobody, and continued (SIGCONT) is back as it was."""

    node: Node

    def cut(self) -> None:
        self.node.signal(signal.SIGSTOP)

    def heal(self) -> None:
        self.node.signal(signal.SIGCONT)


def primary_cut_off(
    stage: chaos.Stage,
    group: SentinelGroup,
    partition: Partition,
    *,
    jobs: int,
    cut_s: float,
    rate_per_sec: int,
    settle_timeout_s: float = 180,
) -> chaos.Result:
    """Two workers send ``jobs``; a third of the way, the primary is cut off by ``partition``
    for ``cut_s``, long enough for the sentinels to promote a replica; healed, it comes back
    as a primary nobody should write to until the sentinels demote it."""
    stage.sandbox.configure(rate_per_sec=rate_per_sec, latency_ms=50)
    for n in range(WORKERS):
        stage.start(f"f{n}", concurrency=CONCURRENCY, redis_min_replicas=MIN_REPLICAS)
    producer = producer_runtime(group.url)
    ids = producer.producer.enqueue_many([{"message": chaos.text(n)} for n in range(jobs)])
    producer.close()
    wait_for(
        lambda: stage.sandbox.stats()["accepted"] >= jobs // 3,
        timeout_s=settle_timeout_s,
        what="a third sent",
    )
    in_flight = claims_now(stage)
    old = group.primary_port()
    assert old is not None
    cut_at = time.time()
    partition.cut()
    try:
        new, took = group.wait_failover(old, timeout_s=60)
        time.sleep(max(0.0, cut_s - took))  # the partition lasts cut_s, whatever happens
    finally:
        partition.heal()
    wait_for(lambda: group.role(old) == "slave", timeout_s=60, what="the old primary demoted")
    group.wait_settled(new, timeout_s=60)
    stranded = chaos.settle(stage, timeout_s=settle_timeout_s)
    ((gap, resumed),) = gaps(stage, [cut_at])
    figures = {
        "partition": type(partition).__name__,
        "cut_s": cut_s,
        "failover_s": round(took, 2),
        "gap_s": round(gap, 2),
        "resumed_after_cut_s": round(resumed, 2),
        "claims_at_cut": in_flight,
        "worker_exits": sum(1 for w in stage.workers if w.process.poll() is not None),
        "stranded_dispatches": stranded,
    }
    return chaos.finish(stage, "primary cut off (a partition)", ids, figures)
