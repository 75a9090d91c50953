"""Overhead: msgworker sends/s ÷ a bare Celery task making the same POST, same pool and size.

The sandbox answers at once (latency 0) with limits far above what the machine can send, so
both sides are CPU-bound on the same cores: the ratio is what msgworker's guarantees (claims,
leases, the limiter, job records, the schedule pump, metrics, logs) cost per send. Both run
one worker command with ``--pool threads --concurrency 16``; the backlog is enqueued before
the worker starts (plain Celery's publishing is paid by its producer, outside the window;
msgworker's pump publishes inside the worker). Rounds alternate msgworker and plain Celery.

    .venv/bin/python bench/overhead.py [--seconds 15] [--rounds 2] [--concurrency 16]
                                       [--profile]   (then py-spy both workers, side by side)
                                       [--msgworker-env LOG_LEVEL=WARNING]  (what-if runs)
                                       [--floor]   (msgworker without its limiter and records)
                                       [--broker amqp://guest:guest@127.0.0.1:5672]
                                         (both on this machine's RabbitMQ, state in Redis)
                                       [--sentinel [--min-replicas 1]]
                                         (both on a primary with a replica, by its sentinels)

Targets: ratio ≥ 1.0; per send, at most 1.25 Redis round trips (one script call per
group of 8 dispatches, one per send), 100 µs of Redis CPU and 1,300 µs of worker CPU.

``--broker amqp://...`` runs both sides on the local RabbitMQ, each run on a vhost of its own
that the bench creates and deletes (rabbitmqctl): msgworker's quorum queue with confirmed
publishes, plain Celery's defaults (a classic queue, unconfirmed). Redis then holds msgworker's
state only, and RabbitMQ's own CPU is not counted.

``--sentinel`` runs Redis as a primary with one replica and three sentinels (AOF every second,
as tests/support/sentinel.py starts them): msgworker's worker on ``redis+sentinel://`` for its
state and its broker (``--min-replicas``: its REDIS_MIN_REPLICAS, a WAIT after its writes),
plain Celery on kombu's sentinel transport to the same primary. The figures are the primary's;
the replica's and the sentinels' CPU is not counted.

``--floor`` is a what-if, not msgworker: its workers tell the scripts, by their ``floor``
argument, neither to limit the rate nor to keep a sent job's records (see FLOOR_HOOK in
common.py), to show what the rest of the send path costs Redis on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from common import (
    FLOOR_HOOK,
    HIGH_RATE_PER_MIN,
    HIGH_RATE_PER_SEC,
    Measured,
    Profile,
    Row,
    Stack,
    Worker,
    base_parser,
    bench_main,
    between,
    cost_rows,
    enqueue_msgworker,
    enqueue_plain,
    floor_row,
    mean,
    measure_cpu,
    msgworker_env,
    msgworker_runtime,
    plain_app,
    plain_env,
    plain_queue_depth,
    print_commands,
    print_rows,
    print_table,
    profile,
    running,
    scheduled_jobs,
    stack,
    start_msgworker,
    start_plain,
    take_sample,
)
from kombu import pools

from tests.support.rabbit import vhost

TARGET = 1.0
WARMUP_S = 3.0
# Where a worker's time goes: (label, py-spy function name), inclusive of what they call.
PARTS = (
    ("Celery consumer loop (fetch, QoS, ack)", "asynloop"),
    ("  kombu QoS.append (unacked bookkeeping)", "QoS.append"),
    ("  kombu Message.ack", "Message.ack"),
    ("  kombu BRPOP read", "Channel._brpop_read"),
    ("Celery task execution (trace + body)", "fast_trace_task"),
    ("  the Gateway POST (msgworker)", "GatewayClient.send"),
    ("  the Gateway POST (plain)", "post"),
    ("  claim a group's first job (begin.lua)", "Transitions.open"),
    ("  settle as sent, claim the next (sent.lua)", "Settlement.sent"),
    ("  metrics", "PrometheusMeter.answered"),
    ("msgworker schedule pump", "Pump.run"),
    ("  publish dispatches (send_task)", "dispatcher.<locals>.dispatch"),
    ("logging, any caller (no line a send at INFO)", "Logger._log"),
    ("  of which structlog formatting", "ProcessorFormatter.format"),
)


def _pool(args: argparse.Namespace) -> list[str]:
    return ["--pool", "threads", "--concurrency", str(args.concurrency)]


def _backlog(args: argparse.Namespace) -> int:
    # Comfortably more than either side sends in the warm-up and the window.
    return int(args.max_rate * (WARMUP_S + args.seconds + 5))


Observe = Callable[[Stack, Worker], Measured]


def _window(args: argparse.Namespace) -> Observe:
    return lambda made, worker: measure_cpu(made, [worker], WARMUP_S, args.seconds)


def _profiled(args: argparse.Namespace, output: Path, into: list[Profile]) -> Observe:
    def observe(made: Stack, worker: Worker) -> Measured:
        time.sleep(WARMUP_S)  # past start-up's imports
        before = take_sample(made, [worker])
        into.append(profile(worker.pid, args.seconds, output))
        return between(before, take_sample(made, [worker]))

    return observe


@contextlib.contextmanager
def broker_of_run(made: Stack, args: argparse.Namespace) -> Iterator[str]:
    """The broker URL of one run: the stack's Redis, or a fresh vhost on ``--broker``."""
    if not args.broker:
        yield made.redis_url
        return
    with vhost("msgworker-bench") as created:
        yield f"{args.broker.rstrip('/')}/{created.name}"


def amqp_queue_depth(app: Any, queue: str = "celery") -> int:
    with app.connection_for_read() as connection:
        return int(connection.default_channel.queue_declare(queue=queue, passive=True)[1])


def run_msgworker(
    made: Stack, args: argparse.Namespace, observe: Observe, floor: Path | None = None
) -> Measured:
    """msgworker's worker sending the backlog (with ``floor``: the what-if's hook there)."""
    made.fresh()
    runtime = msgworker_runtime(made.redis_url)
    enqueue_msgworker(runtime, _backlog(args))
    settings = dict(item.split("=", 1) for item in args.msgworker_env)
    settings.setdefault("rate_per_sec", str(HIGH_RATE_PER_SEC))
    settings.setdefault("rate_per_min", str(HIGH_RATE_PER_MIN))
    if args.min_replicas:
        settings.setdefault("redis_min_replicas", str(args.min_replicas))
    env = msgworker_env(made.redis_url, made.sandbox.url, **settings)
    if floor:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(floor), env.get("PYTHONPATH")]))
    with broker_of_run(made, args) as broker:
        env.update(MSGWORKER_BROKER_URL=broker, MSGWORKER_REDIS_URL=made.redis_url)
        with running([start_msgworker("overhead-mw", env, made.logs, _pool(args))]) as workers:
            result = observe(made, workers[0])
            left = scheduled_jobs(runtime)
    runtime.close()
    if not left:
        print("  warning: msgworker's backlog ran out inside the window; raise --max-rate")
    return result


def run_plain(made: Stack, args: argparse.Namespace, observe: Observe) -> Measured:
    made.fresh()
    with broker_of_run(made, args) as broker:
        plain = plain_app(broker)
        enqueue_plain(plain.send, _backlog(args))
        env = plain_env(broker, made.sandbox.url)
        with running([start_plain("overhead-plain", env, made.logs, _pool(args))]) as workers:
            result = observe(made, workers[0])
            left = amqp_queue_depth(plain.app) if args.broker else plain_queue_depth(made.redis)
        # Closed before a vhost goes, and forgotten: kombu keeps its pools per broker URL across
        # apps, so the next round's app on the same Redis would find this one's closed.
        pools.reset()
    if not left:
        print("  warning: plain Celery's backlog ran out inside the window; raise --max-rate")
    return result


def print_profiles(
    mine_name: str, ours: tuple[Measured, Profile], theirs: tuple[Measured, Profile]
) -> None:
    """Inclusive GIL time per part, as a share and as worker CPU microseconds per send."""
    rows = []
    for label, function in PARTS:
        cells = [label]
        for measured, prof in (ours, theirs):
            share = prof.share(function)
            per_send = share * measured.cpu_us_per_send["workers"]
            cells += [f"{share:6.1%}", f"{per_send:6,.0f}"] if share else ["-", "-"]
        rows.append(cells)
    for name, (measured, _) in ((mine_name, ours), ("plain", theirs)):
        print(f"{name}: {measured.line(name)}")
    print_table(("part", mine_name, "us/send", "plain", "us/send"), rows)
    for name, (_, prof) in ((mine_name, ours), ("plain", theirs)):
        print(f"{name} self time by package: {prof.packages_text()}")


def run(args: argparse.Namespace) -> list[Row]:
    knobs = {
        "rate_per_sec": HIGH_RATE_PER_SEC,
        "rate_per_min": HIGH_RATE_PER_MIN,
        "balance": 1e9,
        "latency_ms": 0,
    }
    ours: list[Measured] = []
    theirs: list[Measured] = []
    mine_name = "msgworker floor" if args.floor else "msgworker"
    if args.min_replicas and not args.sentinel:
        raise SystemExit("--min-replicas needs --sentinel: a lone Redis has no replica to wait for")
    with stack(keep=args.keep, sentinel=args.sentinel, **knobs) as made:
        floor = FLOOR_HOOK if args.floor else None
        if floor:
            print("msgworker runs its floor: no rate limiter's writes, no records of a sent job")
        for number in range(1, args.rounds + 1):
            ours.append(run_msgworker(made, args, _window(args), floor))
            print(f"round {number}: " + ours[-1].line(mine_name))
            theirs.append(run_plain(made, args, _window(args)))
            print(f"round {number}: " + theirs[-1].line("plain Celery"))
        print("Redis commands per send, last round (INFO commandstats):")
        print_commands(((mine_name, ours[-1]), ("plain", theirs[-1])))
        if args.profile:
            print(f"profiling each worker for {args.seconds:.0f} s (py-spy --gil, extra runs):")
            profiles: list[Profile] = []
            mine = run_msgworker(
                made, args, _profiled(args, made.logs / "profile-msgworker.txt", profiles), floor
            )
            base = run_plain(made, args, _profiled(args, made.logs / "profile-plain.txt", profiles))
            print_profiles(mine_name, (mine, profiles[0]), (base, profiles[1]))
    mine_rate = mean([m.window.accepted_per_s for m in ours])
    base_rate = mean([m.window.accepted_per_s for m in theirs])
    on = ", RabbitMQ broker" if args.broker else ""
    command = "python bench/overhead.py" + (" --broker amqp://..." if args.broker else "")
    if args.sentinel:
        on += f", Sentinel store, min replicas {args.min_replicas}"
        command += f" --sentinel --min-replicas {args.min_replicas}"
    row = Row(
        benchmark=f"overhead (latency 0, threads x {args.concurrency}{on}, sends/s)",
        unit="/s",
        msgworker=mine_rate,
        plain=base_rate,
        target=f">= {TARGET:.2f}x",
        met=mine_rate / base_rate >= TARGET if base_rate else None,
        command=command,
    )
    rows = [row, *cost_rows(ours, theirs, command=command)]
    if args.floor:  # a what-if: msgworker's targets are not its to meet
        rows = [floor_row(r) for r in rows]
    print_rows(rows)
    return rows


def parser() -> argparse.ArgumentParser:
    p = base_parser(__doc__)
    p.add_argument("--seconds", type=float, default=15.0, help="measured window per run")
    p.add_argument("--rounds", type=int, default=2, help="msgworker/plain pairs")
    p.add_argument("--concurrency", type=int, default=16, help="threads, both sides")
    p.add_argument("--max-rate", type=float, default=1200.0, help="sizes the backlog")
    p.add_argument("--profile", action="store_true", help="py-spy both workers afterwards")
    p.add_argument(
        "--floor", action="store_true", help="what-if: msgworker without its limiter and records"
    )
    p.add_argument(
        "--broker",
        metavar="AMQP_URL",
        help="both sides on the local RabbitMQ (amqp://user:password@host:port), a vhost a run",
    )
    p.add_argument(
        "--sentinel",
        action="store_true",
        help="Redis as a primary, a replica and three sentinels; both sides reach it by them",
    )
    p.add_argument(
        "--min-replicas",
        type=int,
        default=0,
        metavar="N",
        help="with --sentinel: msgworker's REDIS_MIN_REPLICAS (0: no WAIT)",
    )
    p.add_argument(
        "--msgworker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a msgworker setting for its runs, e.g. LOG_LEVEL=WARNING (repeatable)",
    )
    return p


def main(argv: list[str] | None = None) -> list[Row]:
    return bench_main(parser(), run, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
