"""Chaos scenarios against real processes, sized by their caller: CI runs them small
(tests/system/test_chaos.py), the soak runs them long and big (bench/soak.py).

Each scenario drives a `Stage` (a Redis, the sandbox Gateway, `msgworker worker` processes it
starts, kills and restarts) and returns a `Result`: the invariant report of
`tests.support.invariants` plus the figures of what was done to the system.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.support.cluster import (
    API_KEY,
    Sandbox,
    WorkerProcess,
    run_msgworker,
    start_worker,
    worker_env,
)
from tests.support.invariants import Report, check
from tests.support.processes import free_port, wait_for
from tests.support.secrets import leaked, secrets_in_redis
from worker.dev.localredis import LocalRedis
from worker.errors import Unavailable
from worker.sandbox.server import RunningSandbox, SandboxConfig
from worker.send.routing import default_routing_path
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.schedule import DISPATCH_LEASE_S, count_scheduled

PHONE = "905321234567"
UNLIMITED = {"rate_per_sec": 10_000, "rate_per_min": 600_000}  # the most a limiter believes
# Phone-like digit runs (7+ digits) in a label value would be a number leaking into metrics.
_LABEL_VALUE = re.compile(r'="([^"]*)"')


def text(n: int | str, tag: str = "job") -> dict[str, Any]:
    """A text message whose body names its job: the invariant checker recognises it by that."""
    return {"to": PHONE, "type": "text", "text": {"body": f"{tag} {n}"}}


@dataclass
class Result:
    """What a scenario did and what the invariants found."""

    name: str
    report: Report
    figures: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"scenario": self.name, **self.report.counts(), **self.figures}


class Stage:
    """A Redis, the sandbox and the workers of one scenario; collects every worker's log."""

    def __init__(self, redis_url: str, sandbox: Sandbox, directory: Path) -> None:
        self.redis_url = redis_url
        self.sandbox = sandbox
        self.directory = directory
        self.workers: list[WorkerProcess] = []
        self.metrics_ports: dict[int, int] = {}  # worker pid -> port
        self.runtime = Runtime(
            Settings(
                broker_url=redis_url,
                api_base_url=sandbox.url,
                sandbox=True,
                pair_interval_s=0,  # the messages go to one number, as the workers' (worker_env)
                _env_file=None,
            )
        )

    def start(
        self, name: str = "w", *, concurrency: int = 8, metrics: bool = False, **env: str
    ) -> WorkerProcess:
        """A `msgworker worker` (threads pool); ``env`` are MSGWORKER_* overrides."""
        port = free_port() if metrics else 0
        environment = worker_env(self.redis_url, self.sandbox.url, metrics_port=str(port), **env)
        log = self.directory / f"{name}-{len(self.workers)}.log"
        worker = start_worker(environment, log, concurrency=concurrency)
        self.workers.append(worker)
        if metrics:
            self.metrics_ports[worker.pid] = port
        return worker

    def supervise(self, count: int) -> int:
        """Start workers until ``count`` are alive, as a deployment would; returns how many."""
        started = 0
        while len(self.alive()) < count:
            self.start("replacement")
            started += 1
        return started

    def alive(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.process.poll() is None]

    def expositions(self) -> list[str]:
        """/metrics of every live worker that serves it."""
        return [
            httpx.get(f"http://127.0.0.1:{self.metrics_ports[w.pid]}/metrics", timeout=10).text
            for w in self.alive()
            if w.pid in self.metrics_ports
        ]

    def idle(self) -> bool:
        """Nothing scheduled, leased or in flight: every job is sent, parked or held."""
        client, keys = self.runtime.redis, self.runtime.keys
        return count_scheduled(client, keys) + client.zcard(keys.leases) == 0

    def wait_idle(self, timeout_s: float, what: str = "every job settled") -> None:
        wait_for(self.idle, timeout_s=timeout_s, interval_s=0.2, what=what)

    def msgworker(self, *args: str, **env: str) -> tuple[int, str, str]:
        """The real console script; returns (exit code, stdout, stderr)."""
        environment = worker_env(self.redis_url, self.sandbox.url, **env)
        done = run_msgworker(environment, *args, timeout_s=120)
        return done.returncode, done.stdout, done.stderr

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.runtime.close()

    def logs(self) -> str:
        return "\n".join(w.log() for w in self.workers)

    def secrets_leaked(self, expositions: Sequence[str] = (), max_keys: int = 20_000) -> list[str]:
        """Where the API key or a phone number showed up: logs, metrics, Redis. Empty is good."""
        found = []
        logs = self.logs()
        if leaked(logs, API_KEY):
            found.append("API key (or a piece of it) in a worker log")
        if PHONE in logs:
            found.append("unmasked phone number in a worker log")
        for exposition in expositions:
            if leaked(exposition, API_KEY):
                found.append("API key (or a piece of it) in /metrics")
            found += [
                f"phone-like metric label {value!r}"
                for value in _LABEL_VALUE.findall(exposition)
                if sum(ch.isdigit() for ch in value) >= 7
            ]
        # 100,000 scheduled jobs: a sample of the keys is enough.
        found += [
            f"API key (or a piece of it) in Redis key {key}"
            for key in secrets_in_redis(self.runtime.redis, API_KEY, max_keys=max_keys)
        ]
        return found


@contextmanager
def staged(redis_url: str, directory: Path, **sandbox_knobs: Any) -> Iterator[Stage]:
    """A sandbox (accepting the workers' key) and a Stage; workers stopped on the way out."""
    with RunningSandbox(SandboxConfig(api_keys=(API_KEY,))) as running:
        sandbox = Sandbox(running.url)
        sandbox.configure(**{**UNLIMITED, **sandbox_knobs})
        stage = Stage(redis_url, sandbox, directory)
        try:
            yield stage
        finally:
            stage.stop()
            sandbox.close()


def at_most_once_table(directory: Path) -> str:
    """The default routing table with ambiguous answers parked (at-most-once)."""
    table = directory / "routing-at-most-once.toml"
    table.write_text(
        default_routing_path()
        .read_text()
        .replace(
            'ambiguous = { action = "backoff" }',
            'ambiguous = { action = "park", reason = "ambiguous" }',
        )
    )
    return str(table)


def enqueue(
    stage: Stage, count: int, *, start: int = 0, batch: int = 1000, **options: Any
) -> list[str]:
    ids: list[str] = []
    for first in range(start, start + count, batch):
        last = min(first + batch, start + count)
        items = [{"message": text(n), **options} for n in range(first, last)]
        ids += stage.runtime.producer.enqueue_many(items)
    return ids


def finish(
    stage: Stage, name: str, ids: list[str], figures: dict[str, Any], **check_args: Any
) -> Result:
    report = check(ids, stage.runtime, stage.sandbox.messages(), **check_args)
    stats = stage.sandbox.stats()
    figures.setdefault("faults", dict(stats["faults"]))
    figures.setdefault("gateway_requests", stats["requests"])
    return Result(name, report, figures)


# ---------------------------------------------------------------- scenarios


def kill_loop(
    stage: Stage,
    *,
    jobs: int,
    at_most_once: bool,
    kill_every_s: float = 3.0,
    workers: int = 2,
    latency_ms: float = 100,
    settle_timeout_s: float = 120,
    rng: random.Random | None = None,
) -> Result:
    """kill -9 a worker every few seconds while N jobs go out; a replacement starts each time."""
    rng = rng or random.Random(7)
    overrides = {"routing_file": at_most_once_table(stage.directory)} if at_most_once else {}
    stage.sandbox.configure(latency_ms=latency_ms)
    for n in range(workers):
        stage.start(f"k{n}", **overrides)
    ids = enqueue(stage, jobs)
    kills = 0
    killed_at: list[float] = []
    started = time.monotonic()
    while stage.sandbox.stats()["accepted"] < jobs * 0.9:
        deadline = time.monotonic() + kill_every_s
        while time.monotonic() < deadline and not stage.idle():
            time.sleep(0.1)
        if stage.idle():
            break
        victim = rng.choice(stage.alive())
        victim.kill()
        killed_at.append(time.time())
        kills += 1
        stage.start("k", **overrides)
        if time.monotonic() - started > settle_timeout_s:
            break
    stranded = settle(stage, timeout_s=settle_timeout_s)
    mode = "at-most-once" if at_most_once else "at-least-once"
    figures = {
        "kills": kills,
        "restarts": kills,
        "stranded_dispatches": stranded,
        "in_flight_at_kills": in_flight_at(stage.sandbox.requests(), killed_at),
    }
    return finish(stage, f"kill -9 loop ({mode})", ids, figures)


def in_flight_at(requests: Sequence[dict[str, Any]], moments: Sequence[float]) -> list[int]:
    """For each moment, the calls the Gateway had accepted and not yet answered: the most a
    worker killed then can have sent without learning it (across all workers, so a bound)."""
    return [
        sum(
            1
            for r in requests
            if r["code"] == "OK" and r["at"] <= at and (r["answered_at"] or at) >= at
        )
        for at in moments
    ]


def sigterm_restart(
    stage: Stage,
    *,
    jobs: int,
    rounds: int = 3,
    latency_ms: float = 300,
    settle_timeout_s: float = 90,
) -> Result:
    """Warm shutdown (SIGTERM) of a worker in the middle of its calls, then a new one, in turns."""
    stage.sandbox.configure(latency_ms=latency_ms)
    stage.start("t0")
    stage.start("t1")
    ids = enqueue(stage, jobs)
    stops = 0
    for round_ in range(rounds):
        target = (round_ + 1) * jobs // (rounds + 2)
        wait_for(
            lambda t=target: stage.sandbox.stats()["accepted"] >= t or stage.idle(),
            timeout_s=settle_timeout_s,
            what="sends under way",
        )
        if stage.idle():
            break
        stage.alive()[0].stop(timeout_s=30)
        stops += 1
        stage.start(f"t{round_ + 2}")
    stage.wait_idle(settle_timeout_s)
    return finish(stage, "SIGTERM and restart", ids, {"sigterms": stops, "restarts": stops})


class Producer(threading.Thread):
    """Enqueues batches until ``total``; retries a batch whose call raised (Redis away)."""

    def __init__(self, stage: Stage, total: int, batch: int = 25, pause_s: float = 0.05) -> None:
        super().__init__(name="chaos-producer", daemon=True)
        self.stage, self.total, self.batch, self.pause_s = stage, total, batch, pause_s
        self.ids: list[str] = []
        self.errors: Counter[str] = Counter()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            while len(self.ids) < self.total:
                count = min(self.batch, self.total - len(self.ids))
                # The same idempotency keys on a retry: a batch that did land is not doubled.
                items = [
                    {"message": text(n), "idempotency_key": f"p-{n}"}
                    for n in range(len(self.ids), len(self.ids) + count)
                ]
                try:
                    self.ids += self.stage.runtime.producer.enqueue_many(items)
                except Unavailable as exc:  # Redis away: a restart, or loading its file
                    self.errors[type(exc).__name__] += 1
                    time.sleep(0.2)
                    continue
                time.sleep(self.pause_s)
        except BaseException as exc:  # noqa: BLE001 - reported by the scenario
            self.failure = exc


def redis_restart(
    stage: Stage,
    server: LocalRedis,
    *,
    jobs: int,
    restarts: int = 2,
    gap_s: float = 6.0,
    latency_ms: float = 50,
    settle_timeout_s: float = 120,
) -> Result:
    """Redis (append-only) restarted mid-run, ``gap_s`` apart; workers and a producer carry on.

    A worker that exits would be replaced, as its deployment would (compose ``restart``,
    Kubernetes), and ``worker_exits`` counts those; none should (worker/service/broker.py).
    """
    stage.sandbox.configure(latency_ms=latency_ms)
    stage.start("r0")
    stage.start("r1")
    producer = Producer(stage, jobs, pause_s=gap_s * (restarts + 1) / (jobs / 25))
    producer.start()
    exits = 0
    for _ in range(restarts):
        deadline = time.monotonic() + gap_s
        while time.monotonic() < deadline:
            exits += stage.supervise(2)
            time.sleep(0.2)
        server.restart()
    while producer.is_alive() and time.monotonic() < deadline + settle_timeout_s:
        exits += stage.supervise(2)
        producer.join(timeout=0.5)
    assert not producer.is_alive(), "the producer did not finish"
    assert producer.failure is None, f"the producer failed: {producer.failure!r}"
    exits += stage.supervise(2)
    stranded = settle(stage, timeout_s=settle_timeout_s)
    exits += stage.supervise(2)
    figures = {
        "redis_restarts": restarts,
        "producer_errors": dict(producer.errors),
        "worker_exits": exits,
        "stranded_dispatches": stranded,
    }
    return finish(stage, "Redis restarted mid-run", producer.ids, figures)


def stalled(stage: Stage) -> bool:
    """Nothing due, nothing in the broker, nobody holding a claim: what is left in the leases
    are dispatches no worker will ever start (kombu keeps them until its visibility timeout)."""
    client, keys = stage.runtime.redis, stage.runtime.keys
    claims = next(iter(client.scan_iter(match=f"{keys.prefix}claim:*", count=1000)), None)
    return (
        count_scheduled(client, keys) == 0
        and client.llen(stage.runtime.settings.queue) == 0
        and claims is None
    )


def settle(stage: Stage, *, timeout_s: float) -> int:
    """Wait until every job is settled; returns how many dispatches were stranded.

    A broker message a worker had taken and not started when it died (kill -9) or lost Redis
    is not given back (kombu would after its visibility timeout, an hour); the job waits in the
    leases until its dispatch lease (DISPATCH_LEASE_S) runs out, then the pump dispatches it
    again. That real lease is waited out: the recovery under test is the product's own.
    """
    wait_for(
        # Twice, a second apart: the pump moves jobs from the schedule to the broker in two steps.
        lambda: stage.idle() or (stalled(stage) and not time.sleep(1.0) and stalled(stage)),
        timeout_s=timeout_s,
        interval_s=0.3,
        what="every job settled or only stranded dispatches left",
    )
    if stage.idle():
        return 0
    client, keys = stage.runtime.redis, stage.runtime.keys
    leases = client.zrange(keys.leases, 0, -1, withscores=True)
    latest = max(until for _, until in leases)
    horizon = max(DISPATCH_LEASE_S, stage.runtime.timing.lease_s) + 1
    assert latest <= time.time() + horizon, f"a lease runs until {latest}"
    for member, _ in leases:
        job = stage.runtime.jobs.get(str(member).rpartition("|")[0])
        assert job is not None, f"a lease without a job: {member}"
        assert job.state in {"queued", "sending"}, f"{member} is {job.state}"
    stage.wait_idle(latest - time.time() + timeout_s)
    return len(leases)


def faults_then_outage(
    stage: Stage,
    *,
    jobs: int,
    fault_rate: float = 0.3,
    outage_s: float = 10,
    settle_timeout_s: float = 180,
) -> Result:
    """30% mixed faults, then a 10 s outage mid-run, recovery, and a replay of what was parked."""
    stage.sandbox.configure(
        fault_rate=fault_rate, timeout_fault_s=3.0, latency_ms=20, seed=11
    )  # the workers give up after 2 s
    env = {"max_attempts": "8", "backoff_base_s": "0.2", "backoff_cap_s": "2"}
    stage.start("f0", metrics=True, **env)
    stage.start("f1", metrics=True, **env)
    ids = enqueue(stage, jobs)
    wait_for(
        lambda: stage.sandbox.stats()["accepted"] >= jobs // 3,
        timeout_s=settle_timeout_s,
        what="a third sent",
    )
    stage.sandbox.configure(outage_s=outage_s)
    wait_for(
        lambda: stage.sandbox.stats()["config"]["outage_remaining_s"] == 0,
        timeout_s=outage_s + 10,
        interval_s=0.5,
        what="the outage to end",
    )
    stage.wait_idle(settle_timeout_s)
    parked = sum(stage.runtime.dead_letters.counts().values())
    code, _, err = stage.msgworker("dlq", "replay", "--all", "--rate", "500", "--json")
    assert code == 0, err
    stage.wait_idle(settle_timeout_s, "the replay")
    stats = stage.sandbox.stats()
    slow = stats["faults"].get("slow", 0)
    expositions = stage.expositions()
    result = finish(
        stage,
        "30% faults, then a 10 s outage",
        ids,
        {"parked_by_outage_then_replayed": parked, "outage_s": outage_s},
        expositions=expositions,
        unanswered_accepts=slow,
    )
    result.figures["leaks"] = stage.secrets_leaked(expositions)
    return result


def halt_and_billing(
    stage: Stage, *, jobs: int, billing_budget: int, settle_timeout_s: float = 180
) -> Result:
    """A halt (scripted AUTH_001) then a billing episode in the middle of a run, two workers."""
    stage.sandbox.configure(latency_ms=20)
    stage.start("h0", metrics=True)
    stage.start("h1", metrics=True)
    # The run comes in two halves: the halt in the first, the billing episode in the second, so
    # the balance runs out with jobs still to send however fast the first half went.
    first_half = jobs // 2
    ids = enqueue(stage, first_half)
    sandbox, runtime = stage.sandbox, stage.runtime
    wait_for(lambda: sandbox.stats()["accepted"] >= jobs // 5, timeout_s=60, what="a fifth sent")
    sandbox.script({"status": 401, "code": "AUTH_001", "group": "UNAUTHORIZED"})
    halt = wait_for(lambda: runtime.switches.halted("default"), timeout_s=30, what="the halt")
    time.sleep(1.2)  # the promise: no call later than 1 s after the halt
    calls_at_halt = sandbox.stats()["requests"]
    late = [m for m in sandbox.messages() if m["at"] > halt.since + 1.0]
    time.sleep(1.0)
    calls_while_halted = sandbox.stats()["requests"] - calls_at_halt
    held_report = check(ids, runtime, sandbox.messages())
    code, _, err = stage.msgworker("resume")
    assert code == 0, err
    wait_for(lambda: sandbox.stats()["accepted"] >= first_half, timeout_s=60, what="half sent")
    # The balance runs out after `billing_budget` more messages.
    sandbox.configure(balance=billing_budget / 1000)
    ids += enqueue(stage, jobs - first_half, start=first_half)
    wait_for(lambda: runtime.switches.breaker("default"), timeout_s=60, what="the breaker")
    stage.wait_idle(settle_timeout_s, "every job sent or parked as BILL_001")
    parked = runtime.dead_letters.counts()
    sandbox.post("/sandbox/topup", {"amount": 1000.0})
    code, _, err = stage.msgworker("dlq", "replay", "--code", "BILL_001", "--rate", "500")
    assert code == 0, err
    stage.wait_idle(settle_timeout_s, "the drain")
    expositions = stage.expositions()
    result = finish(
        stage,
        "halt and billing episode",
        ids,
        {
            "late_sends_after_halt": len(late),
            "calls_while_halted": calls_while_halted,
            "pending_while_halted": len(held_report.pending),
            "lost_while_halted": len(held_report.lost),
            "parked_by_billing": parked,
            "breaker_open_at_end": runtime.switches.breaker("default") is not None,
        },
        expositions=expositions,
    )
    result.figures["leaks"] = stage.secrets_leaked(expositions)
    return result


def delays_past_visibility(
    stage: Stage, *, jobs: int, spread_s: float = 4.0, lead_s: float = 3.0
) -> Result:
    """send_at a few seconds ahead with a 1 s visibility timeout: each sent once, never early."""
    stage.sandbox.configure(latency_ms=200)
    # A low rate makes deliveries wait inline, past the visibility timeout: redelivery bait.
    env = {"visibility_timeout_s": "1", "rate_per_sec": "60"}
    stage.start("v0", **env)
    stage.start("v1", **env)
    now = datetime.now(UTC)
    ids: list[str] = []
    due: dict[str, float] = {}
    items = []
    for n in range(jobs):
        when = now + timedelta(seconds=lead_s + spread_s * n / jobs)
        items.append({"message": text(n), "send_at": when})
    for first in range(0, jobs, 1000):
        ids += stage.runtime.producer.enqueue_many(items[first : first + 1000])
    for n in range(len(ids)):
        due[f"job {n}"] = items[n]["send_at"].timestamp()
    stage.wait_idle(lead_s + spread_s + 60)
    time.sleep(2.5)  # two more visibility timeouts: a re-delivery would show now
    messages = stage.sandbox.messages()
    early = [m for m in messages if m["at"] < due[m["body"]["text"]["body"]]]
    lateness = [m["at"] - due[m["body"]["text"]["body"]] for m in messages]
    result = finish(stage, "delays past the visibility timeout", ids, {})
    result.figures.update(
        early=len(early),
        max_late_s=round(max(lateness, default=0.0), 3),
        mean_late_s=round(sum(lateness) / max(len(lateness), 1), 3),
    )
    return result


def rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def scheduled_many(
    stage: Stage,
    *,
    jobs: int,
    due_soon: int = 200,
    wait_s: float = 15.0,
    batch: int = 2000,
) -> Result:
    """100,000 jobs for later in the schedule: status shows them, no worker RSS growth; the few
    due soon are sent once, on time."""
    worker = stage.start("s0")
    stage.wait_idle(10)
    time.sleep(1.0)  # let the new worker's first allocations settle
    rss_start = rss_kib(worker.pid)
    later = datetime.now(UTC) + timedelta(hours=6)
    started = time.monotonic()
    far_ids: list[str] = []
    for first in range(0, jobs, batch):
        count = min(batch, jobs - first)
        far_ids += stage.runtime.producer.enqueue_many(
            [{"message": text(n, "later"), "send_at": later} for n in range(first, first + count)]
        )
    enqueue_s = time.monotonic() - started
    soon = datetime.now(UTC) + timedelta(seconds=4)
    soon_ids = stage.runtime.producer.enqueue_many(
        [{"message": text(n), "send_at": soon} for n in range(due_soon)]
    )
    code, out, err = stage.msgworker("status", "--json")
    assert code == 0, err
    status = json.loads(out)
    wait_for(
        lambda: (
            count_scheduled(stage.runtime.redis, stage.runtime.keys) == jobs
            and stage.runtime.redis.zcard(stage.runtime.keys.leases) == 0
        ),
        timeout_s=30,
        what="the due-soon sample sent, the rest still scheduled",
    )
    # Now only the 100,000 wait: the worker's memory must stay where the sends left it.
    rss_samples = [rss_kib(worker.pid)]
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        time.sleep(1.0)
        rss_samples.append(rss_kib(worker.pid))
    messages = stage.sandbox.messages()
    sample = random.Random(3).sample(far_ids, min(200, len(far_ids)))
    still_scheduled = sum(
        1 for job_id in sample if stage.runtime.jobs.get(job_id).state == "scheduled"
    )
    result = finish(stage, "100,000 scheduled jobs", soon_ids, {})
    late = [m["at"] - soon.timestamp() for m in messages]
    result.figures.update(
        scheduled_jobs=jobs,
        enqueue_s=round(enqueue_s, 1),
        enqueue_per_s=round(jobs / enqueue_s),
        status_scheduled=status["queue"]["scheduled"],
        status_depth=status["queue"]["depth"],
        sample_still_scheduled=f"{still_scheduled}/{len(sample)}",
        rss_start_kib=rss_start,
        rss_max_kib=max(rss_samples),
        rss_growth_kib=max(rss_samples) - rss_start,
        rss_growth_while_waiting_kib=max(rss_samples) - rss_samples[0],
        due_soon_sent=len(result.report.sent),
        early=sum(1 for x in late if x < 0),
        max_late_s=round(max(late, default=0.0), 3),
    )
    return result
