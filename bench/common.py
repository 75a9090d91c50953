"""Shared pieces of the benchmarks: a private Redis, the sandbox in its own process, workers.

Every benchmark starts everything itself (nothing already running is used), runs msgworker
and plain Celery in the same invocation on the same machine, and prints ratios. The
benchmarks are scripts, not tests: ``.venv/bin/python bench/<name>.py --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from tests.support.sentinel import SentinelGroup  # noqa: E402
from worker.dev.localredis import LocalRedis, free_port  # noqa: E402
from worker.models import message_body, parse_message  # noqa: E402
from worker.store import protocol, scripts  # noqa: E402
from worker.store.connect import connect  # noqa: E402
from worker.store.ratelimit import MIN_LIMIT_MAX, SEC_LIMIT_MAX  # noqa: E402
from worker.urls import is_sentinel, parse_sentinel  # noqa: E402

BIN = Path(sys.executable).parent
API_KEY = "sk_bench_0123456789abcdef"
# What callers hand to msgworker, and the Gateway body both systems POST for it.
PAYLOAD: dict[str, Any] = {"to": "+90 532 123 45 67", "type": "text", "text": {"body": "bench"}}
BODY: dict[str, Any] = message_body(parse_message(PAYLOAD))
# msgworker's jobs each go to a recipient of their own, as a campaign's do: its pair pacing (one
# message a recipient every PAIR_INTERVAL_S, on by default) never holds a backlog back then.
_RECIPIENTS = itertools.count()


def recipient() -> str:
    """A number no job of this process was sent to before (ten million of them, then again)."""
    return f"90533{next(_RECIPIENTS) % 10**7:07d}"


def distinct(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` to a recipient of its own."""
    return {**message, "to": recipient()}


# Limits far above what the machine can send, and no higher than the worker believes a Gateway
# (higher ones it ignores, with a warning per answer: a cost no real deployment pays).
HIGH_RATE_PER_SEC = SEC_LIMIT_MAX
HIGH_RATE_PER_MIN = MIN_LIMIT_MAX

SERVE = (
    "import json, sys; from worker.sandbox.server import SandboxConfig, serve; "
    "knobs = json.loads(sys.argv[2]); knobs['api_keys'] = tuple(knobs['api_keys']); "
    "serve(SandboxConfig(**knobs), '127.0.0.1', int(sys.argv[1]))"
)


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class Row:
    """One line of a benchmark's summary: msgworker's figure, plain Celery's, the target."""

    benchmark: str
    unit: str
    msgworker: float | None
    plain: float | None
    target: str
    met: bool | None
    command: str
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.msgworker is None or not self.plain:
            return None
        return self.msgworker / self.plain

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "unit": self.unit,
            "msgworker": self.msgworker,
            "plain": self.plain,
            "ratio": self.ratio,
            "target": self.target,
            "met": self.met,
            "command": self.command,
            "note": self.note,
        }


def number(value: float | None, unit: str = "") -> str:
    """A figure as a person reads it: 1,234 / 12.3 / 0.85; percentages as 12.3 %."""
    if value is None:
        return "-"
    if unit == "%":
        return f"{value:.1f} %"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def ratio_text(row: Row) -> str:
    ratio = row.ratio
    return "-" if ratio is None else f"{ratio:.2f}x"


def verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "-"}[met]


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain-text table, columns as wide as their widest cell."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def print_rows(rows: Sequence[Row]) -> None:
    headers = ("benchmark", "msgworker", "plain Celery", "ratio", "target", "")
    cells = [
        (
            r.benchmark,
            number(r.msgworker, r.unit),
            number(r.plain, r.unit),
            ratio_text(r),
            r.target,
            verdict(r.met),
        )
        for r in rows
    ]
    print_table(headers, cells)
    for r in rows:
        if r.note:
            print(f"  {r.benchmark}: {r.note}")


def print_acceptance(rows: Sequence[Row], baseline: str) -> None:
    """Acceptance figures (seconds or %) with PASS or MISS; ``baseline`` heads the plain column."""
    print_table(
        ("figure", "measured", baseline, "target", ""),
        [
            (
                r.benchmark,
                f"{r.msgworker:.3f}" if r.unit == "s" else number(r.msgworker, r.unit),
                number(r.plain, r.unit) if r.unit != "s" or r.plain is None else f"{r.plain:.3f}",
                r.target,
                "PASS" if r.met else "MISS",
            )
            for r in rows
        ],
    )


def write_json(path: str | None, rows: Sequence[Row]) -> None:
    if path:
        Path(path).write_text(json.dumps([r.to_dict() for r in rows], indent=2) + "\n")


def bench_main(
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace], list[Row]],
    argv: list[str] | None,
) -> list[Row]:
    """Parse, run, write the JSON rows when asked: every benchmark script's main()."""
    args = parser.parse_args(argv)
    rows = run(args)
    write_json(args.json_out, rows)
    return rows


def base_parser(doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(doc or "").split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--json-out", help="also write the summary rows to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the logs directory")
    return parser


def machine_line() -> str:
    return f"machine: {os.cpu_count()} cpus, python {sys.version.split()[0]}, everything on it"


# ---------------------------------------------------------------- the sandbox


class Sandbox:
    """The sandbox gateway in its own process (as `msgworker sandbox` runs it) and its admin API."""

    def __init__(self, logs: Path, **knobs: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        knobs.setdefault("api_keys", [API_KEY])
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self._log = (logs / "sandbox.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter, our module
            [sys.executable, "-c", SERVE, str(self.port), json.dumps(knobs)],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._http = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + 20
        while True:
            try:
                self._http.get("/sandbox/health").raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.process.pid

    def post(self, path: str, body: Any) -> Any:
        response = self._http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def configure(self, **knobs: Any) -> dict[str, Any]:
        return dict(self.post("/sandbox/config", knobs)["config"])

    def reset(self) -> None:
        self.post("/sandbox/reset", {})

    def stats(self) -> dict[str, Any]:
        response = self._http.get("/sandbox/stats")
        response.raise_for_status()
        return dict(response.json())

    def arrivals(self) -> list[dict[str, Any]]:
        """Every request since the last reset (at: its arrival, wall clock; code), oldest first."""
        return list(self._http.get("/sandbox/requests").json()["requests"])

    def accepted_times(self) -> list[float]:
        """Wall-clock time of every accepted message since the last reset, oldest first."""
        return [m["at"] for m in self.accepted()]

    def accepted(self) -> list[dict[str, Any]]:
        """Every accepted message since the last reset (at, key_label, body…), oldest first."""
        messages: list[dict[str, Any]] = []
        since = 0
        while True:
            page = self._http.get(
                "/sandbox/messages", params={"since": since, "limit": 10000}
            ).json()
            messages += page["messages"]
            if not page["messages"]:
                return messages
            since = page["next"]

    def close(self) -> None:
        self._http.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@dataclass(frozen=True)
class Window:
    """What the sandbox saw between two snapshots of its stats."""

    seconds: float
    requests: int
    accepted: int
    rejected_429: int

    @property
    def accepted_per_s(self) -> float:
        return self.accepted / self.seconds

    @property
    def share_429(self) -> float:
        return self.rejected_429 / self.requests if self.requests else 0.0


def window_between(before: dict[str, Any], after: dict[str, Any], seconds: float) -> Window:
    return Window(
        seconds=seconds,
        requests=after["requests"] - before["requests"],
        accepted=after["accepted"] - before["accepted"],
        rejected_429=after["by_status"].get("429", 0) - before["by_status"].get("429", 0),
    )


def measure_seconds(
    sandbox: Sandbox, warmup_s: float, seconds: float
) -> tuple[Window, list[Window]]:
    """After the warm-up, what the sandbox sees in ``seconds``: in all and second by second."""
    time.sleep(warmup_s)
    first = previous = sandbox.stats()
    start = at = time.monotonic()
    series: list[Window] = []
    while at - start < seconds - 1e-3:
        time.sleep(max(0.0, start + len(series) + 1 - time.monotonic()))
        current, now = sandbox.stats(), time.monotonic()
        series.append(window_between(previous, current, now - at))
        previous, at = current, now
    return window_between(first, previous, at - start), series


def peak_in(times: Sequence[float], span_s: float) -> int:
    """The most of ``times`` (sorted) that fall within any ``span_s``: bursts show here."""
    peak, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= span_s:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


# ---------------------------------------------------------------- workers


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc, Linux only)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def rss_kib(pid: int) -> int:
    """VmRSS of one process in KiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Worker:
    """One worker command (`msgworker worker …` or `celery -A bench.plain_celery worker …`)."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        logs: Path,
        probe: Callable[[], bool] | None = None,
    ) -> None:
        self.name = name
        self.probe = probe
        self.args = args
        self.log_path = logs / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our console scripts
            args,
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while " ready." not in self.log() and not (self.probe and self.probe()):
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not ready after {timeout_s}s")
            time.sleep(0.1)

    def pids(self) -> list[int]:
        return [self.pid, *descendants(self.pid)]

    def rss_kib(self) -> int:
        """VmRSS of the worker process and all its children."""
        return sum(rss_kib(pid) for pid in self.pids())

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())

    def stop(self, timeout_s: float = 20) -> None:
        """Warm shutdown (SIGTERM to the group); SIGKILL when it takes too long."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()


def msgworker_env(redis_url: str, sandbox_url: str, **overrides: str | int) -> dict[str, str]:
    """Production defaults except where the bench must say (URLs, key; metrics ports per worker)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGWORKER_")}
    env.update(
        {
            "MSGWORKER_BROKER_URL": redis_url,
            "MSGWORKER_API_BASE_URL": sandbox_url,
            "MSGWORKER_API_KEY": API_KEY,
            "MSGWORKER_SANDBOX": "true",
            "MSGWORKER_LOG_FORMAT": "json",
        }
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update({f"MSGWORKER_{k.upper()}": str(v) for k, v in overrides.items()})
    return env


# The send path's floor (`--floor` in bench/overhead.py and bench/scripts.py): its per-send
# scripts told by their `floor` argument (worker/store/protocol.py) to skip the rate limiter's
# writes and learning (the slot a call reserves, what an answer's headers teach) and a sent
# job's records (history, expiries, send-once ledger, wamid index, the count of its answer).
# The pump still reads the call logs for its budget. What is left claims a job, settles it and
# begins the next. A worker process takes the floor from bench/floor/sitecustomize.py, put
# first on its PYTHONPATH.
FLOOR_HOOK = ROOT / "bench" / "floor"


def floor_row(row: Row) -> Row:
    """A benchmark's row as measured on the floor: named so, and judged against no target."""
    return replace(
        row, benchmark=f"{row.benchmark}, floor what-if", command=f"{row.command} --floor", met=None
    )


def plain_broker(url: str) -> tuple[str, str | None]:
    """``url`` as plain Celery is given it, and the primary's name: a Sentinel service as kombu's
    own list of ``sentinel://`` URLs (the name goes in its transport options), else as it is."""
    if not is_sentinel(url):
        return url, None
    where = parse_sentinel(url)
    return where.kombu_url(), where.service


def plain_env(redis_url: str, sandbox_url: str, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MSGWORKER_", "BENCH_"))}
    broker, master_name = plain_broker(redis_url)
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "BENCH_BROKER_URL": broker,
            "BENCH_SANDBOX_URL": sandbox_url,
            "BENCH_API_KEY": API_KEY,
        }
    )
    if master_name:
        env["BENCH_MASTER_NAME"] = master_name
    env.update({f"BENCH_{k.upper()}": v for k, v in overrides.items()})
    return env


def msgworker_worker(
    name: str, env: dict[str, str], logs: Path, options: Sequence[str] = ()
) -> Worker:
    """`msgworker worker` with its defaults unless ``options`` say otherwise (not yet ready)."""
    args = [str(BIN / "msgworker"), "worker", "-n", f"{name}@%h", *options]
    env = {"MSGWORKER_METRICS_PORT": str(free_port()), **env}  # one per worker command
    port = env["MSGWORKER_METRICS_PORT"]
    # Below INFO the " ready." line is not logged: /metrics answering will do then.
    return Worker(name, args, env, logs, probe=lambda: _answers(port))


def _answers(port: str) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def plain_worker(name: str, env: dict[str, str], logs: Path, options: Sequence[str] = ()) -> Worker:
    """`celery -A bench.plain_celery worker` with Celery's defaults unless ``options`` say."""
    args = [str(BIN / "celery"), "-A", "bench.plain_celery", "worker", "-n", f"{name}@%h"]
    return Worker(name, [*args, *options], env, logs)


def ready(workers: list[Worker]) -> list[Worker]:
    """Wait until every worker (started together, so in parallel) is ready; stop all on failure."""
    try:
        for worker in workers:
            worker.wait_ready()
    except BaseException:
        for worker in workers:
            worker.stop()
        raise
    return workers


def start_msgworker(
    name: str, env: dict[str, str], logs: Path, options: Sequence[str] = ()
) -> Worker:
    return ready([msgworker_worker(name, env, logs, options)])[0]


def start_plain(name: str, env: dict[str, str], logs: Path, options: Sequence[str] = ()) -> Worker:
    return ready([plain_worker(name, env, logs, options)])[0]


@contextlib.contextmanager
def running(workers: list[Worker]) -> Iterator[list[Worker]]:
    try:
        yield workers
    finally:
        for worker in workers:
            worker.stop()


# ---------------------------------------------------------------- the stack


@dataclass
class Stack:
    """A private redis-server (or a Sentinel group's primary) and the sandbox, for one benchmark
    invocation."""

    logs: Path
    redis_server: LocalRedis | SentinelGroup
    sandbox: Sandbox
    redis: redis.Redis = field(init=False)

    def __post_init__(self) -> None:
        self.redis = connect(self.redis_server.url, timeout_s=None, connect_timeout_s=5.0)

    @property
    def redis_url(self) -> str:
        return self.redis_server.url

    @property
    def redis_pid(self) -> int:
        return int(self.redis.info("server")["process_id"])

    def fresh(self, **sandbox_knobs: Any) -> None:
        """Empty Redis, reset the sandbox's counters and windows, then set its knobs."""
        self.redis.flushall()
        self.sandbox.reset()
        if sandbox_knobs:
            self.sandbox.configure(**sandbox_knobs)


@contextlib.contextmanager
def stack(keep: bool = False, *, sentinel: bool = False, **sandbox_knobs: Any) -> Iterator[Stack]:
    """Start Redis and the sandbox; print where the logs are; stop both at the end. With
    ``sentinel``, Redis is a primary with one replica and three sentinels, reached through them."""
    logs = Path(tempfile.mkdtemp(prefix="msgworker-bench-"))
    server = SentinelGroup(logs / "sentinel", replicas=1) if sentinel else LocalRedis(logs)
    server.start()
    sandbox: Sandbox | None = None
    try:
        sandbox = Sandbox(logs, **sandbox_knobs)
        made = Stack(logs, server, sandbox)
        print(f"{machine_line()}; redis {server.url}, sandbox {sandbox.url}, logs {logs}")
        yield made
        made.redis.close()
    finally:
        if sandbox is not None:
            sandbox.close()
        server.stop()
        if not keep:
            shutil.rmtree(logs, ignore_errors=True)


# ---------------------------------------------------------------- producing


def msgworker_runtime(redis_url: str, **settings: Any) -> Any:
    """A `worker.service.runtime.Runtime` on this Redis (as a producer process builds it)."""
    from worker.service.runtime import Runtime  # noqa: PLC0415
    from worker.settings import get_settings  # noqa: PLC0415
    from worker.store.upgrade import keep_pending_jobs  # noqa: PLC0415

    runtime = Runtime(get_settings(broker_url=redis_url, **settings))
    # The first worker on a Redis makes a one-time pass over the records of older versions;
    # made now, before a backlog is enqueued, it costs nothing inside a measured window.
    keep_pending_jobs(runtime.redis, runtime.keys)
    return runtime


def scheduled_jobs(runtime: Any, *, after: float | None = None) -> int:
    """Jobs waiting in msgworker's schedule (every account's lanes); only those due after
    ``after`` when given."""
    from worker.store.schedule import count_scheduled, scheduled_by_account  # noqa: PLC0415

    if after is None:
        return count_scheduled(runtime.redis, runtime.keys)
    counts = scheduled_by_account(runtime.redis, runtime.keys, after)
    return sum(later for _, later in counts.values())


def enqueue_msgworker(
    runtime: Any, count: int, *, batch: int = 1000, options: dict[str, Any] | None = None
) -> list[str]:
    """``count`` jobs through `Producer.enqueue_many`, ``batch`` per call, each to a recipient of
    its own; returns their ids."""
    ids: list[str] = []
    for start in range(0, count, batch):
        size = min(batch, count - start)
        items = [{"message": distinct(PAYLOAD), **(options or {})} for _ in range(size)]
        ids += runtime.producer.enqueue_many(items)
    return ids


@dataclass(frozen=True)
class PlainTasks:
    """`bench.plain_celery`'s tasks on an app of their own, for enqueueing from here."""

    app: Any
    send: Any
    send_limited: Any
    send_retry: Any


def plain_app(redis_url: str) -> PlainTasks:
    """A plain-Celery app on this Redis (a new one per Redis: Celery caches connections)."""
    from bench.plain_celery import create_app  # noqa: PLC0415 - the plain app, only when asked

    app = create_app(*plain_broker(redis_url))
    tasks = app.tasks
    return PlainTasks(
        app, tasks["bench.send"], tasks["bench.send_limited"], tasks["bench.send_retry"]
    )


def enqueue_plain(task: Any, count: int, **options: Any) -> None:
    """``count`` `apply_async` calls on one pooled producer connection."""
    with task.app.producer_or_acquire() as producer:
        for _ in range(count):
            task.apply_async(args=(BODY,), producer=producer, **options)


def plain_queue_depth(client: redis.Redis, queue: str = "celery") -> int:
    return int(client.llen(queue))


def wait_until(
    condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.2, what: str = ""
) -> bool:
    """Poll ``condition``; False (not an error) when ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            print(f"  (gave up waiting for {what or 'a condition'} after {timeout_s:.0f} s)")
            return False
        time.sleep(interval_s)
    return True


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank; 0 for none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] if ordered else 0.0


def trickle(send: Callable[[int], object], every_s: float, seconds: float) -> dict[int, float]:
    """Call ``send(n)`` every ``every_s`` for ``seconds`` on a steady clock (no drift); returns
    the wall-clock time of each call by ``n``."""
    started = time.monotonic()
    times: dict[int, float] = {}
    n = 0
    while n * every_s < seconds:
        time.sleep(max(0.0, started + n * every_s - time.monotonic()))
        times[n] = time.time()
        send(n)
        n += 1
    return times


def text_payload(body: str) -> dict[str, Any]:
    """PAYLOAD with its own text, to find the message among the sandbox's accepted ones, to a
    recipient of its own."""
    return {**distinct(PAYLOAD), "text": {"body": body}}


@dataclass(frozen=True)
class Trickled:
    """A trickle of jobs sent beside whatever else the workers had to do, as the sandbox saw it."""

    latencies: list[float]  # enqueue call to the Gateway accepting it, seconds, per trickled job
    missing: int  # trickled jobs the Gateway never accepted within the wait
    window: Window  # every call the sandbox answered while the trickle ran
    accepted_by_key: dict[str, int]  # accepted within that window, by the sandbox's key label

    def per_s(self, key_label: str) -> float:
        return self.accepted_by_key.get(key_label, 0) / self.window.seconds

    def latency_text(self) -> str:
        """The trickle's enqueue-to-send p50, p99 and max, and how many were sent and not."""
        lat = self.latencies
        return (
            f"p50 {percentile(lat, 0.5):.3f} s, p99 {percentile(lat, 0.99):.3f} s, "
            f"max {max(lat, default=0):.3f} s ({len(lat)} sent, {self.missing} not)"
        )


def run_trickle(
    made: Stack,
    runtime: Any,
    *,
    seconds: float,
    every_s: float,
    envelope: Callable[[str], dict[str, Any]],
    wait_s: float = 60.0,
) -> Trickled:
    """Enqueue ``envelope(text)`` every ``every_s`` for ``seconds`` (each with its own text) with
    the workers running, then wait for the trickled jobs to be accepted; ``Trickled`` says how
    long each took and what the Gateway saw meanwhile."""
    before, started = made.sandbox.stats(), time.time()
    enqueued = trickle(
        lambda n: runtime.producer.enqueue_many([envelope(f"trickle-{n}")]), every_s, seconds
    )
    after, ended = made.sandbox.stats(), time.time()
    accepted: dict[int, float] = {}

    def all_accepted() -> bool:
        for message in made.sandbox.accepted():
            body = str(((message.get("body") or {}).get("text") or {}).get("body", ""))
            if body.startswith("trickle-"):
                accepted[int(body.removeprefix("trickle-"))] = message["at"]
        return len(accepted) >= len(enqueued)

    wait_until(all_accepted, timeout_s=wait_s, interval_s=1.0, what="every trickled job sent")
    by_key: dict[str, int] = {}
    for message in made.sandbox.accepted():
        if started <= message["at"] < ended:
            by_key[message["key_label"]] = by_key.get(message["key_label"], 0) + 1
    return Trickled(
        latencies=[accepted[n] - at for n, at in enqueued.items() if n in accepted],
        missing=len(enqueued) - len(accepted),
        window=window_between(before, after, ended - started),
        accepted_by_key=by_key,
    )


# ---------------------------------------------------------------- which scripts run


def _script_names() -> dict[str, str]:
    """Every script the workers may load, by its SHA1, as ``load_script`` puts it together."""
    return {
        hashlib.sha1(scripts.script_source(script).encode()).hexdigest(): script.name  # noqa: S324 - Redis's
        for script in protocol.SCRIPTS
    }


@contextlib.contextmanager
def script_calls(redis_url: str) -> Iterator[dict[str, int]]:
    """Counts of the requests every client sends, by script name for EVALSHA, else by command,
    read from MONITOR while inside (a diagnostic: MONITOR costs Redis CPU of its own, so a run
    that measures CPU must not use it)."""
    names = _script_names()
    counts: dict[str, int] = {}
    client = redis.Redis.from_url(redis_url)
    stop = threading.Event()

    def read() -> None:
        with client.monitor() as monitor:
            for line in monitor.listen():
                if stop.is_set():
                    return
                words = line["command"].split(" ", 2)
                command = words[0].lower()
                if line.get("client_type") == "lua":
                    continue
                label = names.get(words[1], "evalsha ?") if command == "evalsha" else command
                counts[label] = counts.get(label, 0) + 1

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        yield counts
    finally:
        stop.set()
        client.ping()  # one more line, so that the reader sees the stop


def print_script_calls(counts: dict[str, int], sends: int) -> None:
    rows = [
        [label, f"{n:,}", f"{n / max(sends, 1):.3f}"]
        for label, n in sorted(counts.items(), key=lambda item: -item[1])
    ]
    print_table(("request (script or command)", "count", "per send"), rows)


# ---------------------------------------------------------------- CPU accounting and profiles


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user
    return total - idle, total


# Commands only Celery's Redis transport sends as requests of their own: its consume (BRPOP),
# publish (LPUSH) and the MULTI of each pipeline it sends (unacked bookkeeping, ack). msgworker's
# own are scripts and single commands, and a MULTI only off the hot path (an incident resolving).
BROKER_COMMANDS = ("brpop", "lpush", "multi")


def redis_counters(client: redis.Redis) -> dict[str, int]:
    """Redis's own counts of the work clients gave it, everyone's (INFO stats, commandstats).

    ``round trips``: requests read from clients (a script call or a pipeline is one), of which
    ``broker``: Celery's (see BROKER_COMMANDS) and ``state``: the rest, msgworker's own;
    ``scripts``: EVALSHA/EVAL calls; ``commands``: every command run, those inside scripts
    included. The benchmark's own sampling adds a handful, nothing per send.
    """
    stats = client.info("stats")
    commands = client.info("commandstats")

    def calls(*names: str) -> int:
        return sum(int(commands.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in names)

    round_trips = int(stats["total_reads_processed"])
    broker = calls(*BROKER_COMMANDS)
    return {
        "round trips": round_trips,
        "broker": broker,
        "state": round_trips - broker,
        "scripts": calls("evalsha", "eval"),
        "commands": int(stats["total_commands_processed"]),
    }


@dataclass(frozen=True)
class Sample:
    """The sandbox's counters, the CPU seconds each party has used and Redis's counters, at one
    moment."""

    at: float
    stats: dict[str, Any]
    cpu: dict[str, float]
    machine: tuple[int, int] = (0, 0)
    redis: dict[str, int] = field(default_factory=dict)
    commands: dict[str, tuple[int, int]] = field(default_factory=dict)  # name: (calls, usec)


@dataclass(frozen=True)
class Measured:
    """Between two samples: what the sandbox saw, CPU microseconds and Redis requests per
    accepted send."""

    window: Window
    cpu_us_per_send: dict[str, float]
    machine_busy: float = 0.0  # share of all cores busy (anyone's processes)
    redis_per_send: dict[str, float] = field(default_factory=dict)
    # Per command (scripts' inner commands included): (calls, µs inside Redis) per send.
    commands_per_send: dict[str, tuple[float, float]] = field(default_factory=dict)

    def line(self, name: str) -> str:
        rate = self.window.accepted_per_s
        return f"{name:<13} {rate:7,.1f} sends/s  {self.cpu_text()}"

    def cpu_text(self) -> str:
        parts = [f"{name} {us:,.0f}" for name, us in self.cpu_us_per_send.items()]
        text = f"CPU us/send: {', '.join(parts)}; machine {self.machine_busy:.0%} busy"
        if self.redis_per_send:
            counts = [f"{name} {n:.2f}" for name, n in self.redis_per_send.items()]
            text += f"; Redis per send: {', '.join(counts)}"
        return text


def take_sample(made: Stack, workers: Sequence[Worker]) -> Sample:
    cpu = {
        "workers": sum(w.cpu_seconds() for w in workers),
        "redis": cpu_seconds(made.redis_pid),
        "sandbox": cpu_seconds(made.sandbox.pid),
    }
    counters = redis_counters(made.redis)
    commands = {
        name.removeprefix("cmdstat_"): (int(stat["calls"]), int(stat["usec"]))
        for name, stat in made.redis.info("commandstats").items()
    }
    return Sample(
        time.monotonic(), made.sandbox.stats(), cpu, machine_jiffies(), counters, commands
    )


def between(before: Sample, after: Sample) -> Measured:
    window = window_between(before.stats, after.stats, after.at - before.at)
    sends = max(window.accepted, 1)
    per_send = {name: (after.cpu[name] - before.cpu[name]) / sends * 1e6 for name in before.cpu}
    redis_per_send = {name: (after.redis[name] - n) / sends for name, n in before.redis.items()}
    commands = {
        name: (
            (calls - before.commands.get(name, (0, 0))[0]) / sends,
            (usec - before.commands.get(name, (0, 0))[1]) / sends,
        )
        for name, (calls, usec) in after.commands.items()
    }
    busy = after.machine[0] - before.machine[0]
    total = after.machine[1] - before.machine[1]
    return Measured(window, per_send, busy / total if total else 0.0, redis_per_send, commands)


def print_commands(sides: Sequence[tuple[str, Measured]], top: int = 25) -> None:
    """Redis's commandstats per send, side by side: calls and µs inside Redis per command (a
    script's µs include its inner commands'; the round trip around a request is not in them)."""
    names = sorted(
        {name for _, m in sides for name in m.commands_per_send},
        key=lambda name: -max(m.commands_per_send.get(name, (0, 0))[1] for _, m in sides),
    )
    rows = []
    for name in names[:top]:
        cells = [name]
        for _, m in sides:
            calls, usec = m.commands_per_send.get(name, (0.0, 0.0))
            cells += [f"{calls:.3f}", f"{usec:.1f}"] if calls else ["-", "-"]
        rows.append(cells)
    header = ["command"]
    for side, _ in sides:
        header += [f"{side} calls", "us"]
    print_table(tuple(header), rows)


# What one send may cost msgworker: (row, unit, the figure, its ceiling).
COST_TARGETS: tuple[tuple[str, str, Callable[[Measured], float], float], ...] = (
    # msgworker's own: a begin per group of 8 dispatches, a settlement per send.
    ("Redis round trips per send, state", "", lambda m: m.redis_per_send["state"], 2 / 8 + 1),
    ("Redis round trips per send, all", "", lambda m: m.redis_per_send["round trips"], 2),
    ("Redis CPU per send", "us", lambda m: m.cpu_us_per_send["redis"], 100),
    ("worker CPU per send", "us", lambda m: m.cpu_us_per_send["workers"], 1300),
)


def cost_rows(ours: Sequence[Measured], theirs: Sequence[Measured], *, command: str) -> list[Row]:
    """What a send costs each side, averaged over the rounds: Redis requests, Redis CPU, worker
    CPU (the targets are msgworker's)."""

    def average(measured: Sequence[Measured], read: Callable[[Measured], float]) -> float:
        return mean([read(m) for m in measured])

    rows = []
    for benchmark, unit, read, limit in COST_TARGETS:
        mine, base = average(ours, read), average(theirs, read)
        rows.append(
            Row(
                benchmark=benchmark,
                unit=unit,
                msgworker=mine,
                plain=base,
                target=f"<= {limit:g}",
                met=mine <= limit,
                command=command,
            )
        )
    return rows


def measure_cpu(
    made: Stack, workers: Sequence[Worker], warmup_s: float, seconds: float
) -> Measured:
    """After the warm-up, what ``seconds`` of sending cost every party."""
    time.sleep(warmup_s)
    before = take_sample(made, workers)
    time.sleep(seconds)
    return between(before, take_sample(made, workers))


def _package(frame: str) -> str:
    """Where a py-spy frame ``function (path:line)`` lives: a package, worker.<module>, stdlib."""
    _, _, where = frame.rpartition(" (")
    path = where.rsplit(":", 1)[0]
    name = path.rsplit("/", 1)[-1].removesuffix(".py")
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/worker/" in path:
        return "worker." + name
    if "/bench/" in path:
        return "bench." + name
    if "/" not in path:
        return path  # <frozen …>, <string>, py-spy's oddities
    return "stdlib." + name


@dataclass(frozen=True)
class Profile:
    """GIL-holding py-spy samples of one process: self time by package, inclusive by function."""

    samples: int
    by_package: dict[str, int]
    inclusive: dict[str, int]

    def share(self, function: str) -> float:
        return self.inclusive.get(function, 0) / self.samples if self.samples else 0.0

    def packages_text(self, top: int = 12) -> str:
        ranked = sorted(self.by_package.items(), key=lambda kv: -kv[1])[:top]
        return ", ".join(f"{name} {100 * n / self.samples:.0f}%" for name, n in ranked)


def profile(pid: int, seconds: float, output: Path) -> Profile:
    """py-spy samples of whichever thread holds the GIL, for ``seconds`` (raw stacks kept)."""
    spy = BIN / "py-spy"
    if not spy.exists():
        raise SystemExit(f"no {spy}: install it with `.venv/bin/pip install py-spy`")
    args = [str(spy), "record", "--pid", str(pid), "--duration", str(int(seconds)), "--gil"]
    args += ["--rate", "250", "--format", "raw", "--full-filenames", "--nonblocking"]
    subprocess.run(  # noqa: S603 - our py-spy, our worker
        [*args, "--output", str(output)], check=True, capture_output=True
    )
    by_package: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in output.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text:
            continue
        count = int(count_text)
        frames = stack_text.split(";")
        total += count
        leaf = _package(frames[-1])
        by_package[leaf] = by_package.get(leaf, 0) + count
        for name in {f.split(" (")[0] for f in frames}:
            inclusive[name] = inclusive.get(name, 0) + count
    return Profile(total, by_package, inclusive)
