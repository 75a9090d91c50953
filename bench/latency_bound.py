"""Latency-bound throughput: sends/s of ONE worker command, with its defaults, on a slow Gateway.

Every answer takes 300 ms (sandbox ``latency_ms=300``) and the limits are far out of reach
(10,000/s), so sends/s is the number of calls a worker keeps in flight ÷ 0.3 s, until the
CPU runs out:

- msgworker: ``msgworker worker`` with its defaults (it picks the pool and its size); the
  account's configured limits match the Gateway's (``MSGWORKER_RATE_PER_SEC`` etc.).
- plain Celery: ``celery -A bench.plain_celery worker`` with no pool options (prefork, one
  process per core), task ``bench.send`` making the same POST.

    .venv/bin/python bench/latency_bound.py [--seconds 20] [--latency-ms 300]
                                            [--also "--concurrency 200"]  (extra msgworker runs)

Target: msgworker ≥ 200 sends/s on this 2-core machine.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from common import (
    HIGH_RATE_PER_MIN,
    HIGH_RATE_PER_SEC,
    Measured,
    Row,
    Stack,
    base_parser,
    bench_main,
    enqueue_msgworker,
    enqueue_plain,
    measure_cpu,
    msgworker_env,
    msgworker_runtime,
    plain_app,
    plain_env,
    plain_queue_depth,
    print_rows,
    running,
    scheduled_jobs,
    stack,
    start_msgworker,
    start_plain,
)

TARGET = 200.0
WARMUP_S = 5.0


def _backlog(rate: float, args: argparse.Namespace) -> int:
    return int(rate * (WARMUP_S + args.seconds + 10))


def run_msgworker(made: Stack, args: argparse.Namespace, options: list[str]) -> Measured:
    made.fresh()
    runtime = msgworker_runtime(made.redis_url)
    enqueue_msgworker(runtime, _backlog(args.max_rate, args))
    env = msgworker_env(
        made.redis_url,
        made.sandbox.url,
        rate_per_sec=HIGH_RATE_PER_SEC,
        rate_per_min=HIGH_RATE_PER_MIN,
    )
    with running([start_msgworker("latency-mw", env, made.logs, options)]) as workers:
        result = measure_cpu(made, workers, WARMUP_S, args.seconds)
        left = scheduled_jobs(runtime)
    runtime.close()
    if not left:
        print("  warning: msgworker's backlog ran out inside the window; raise --max-rate")
    return result


def run_plain(made: Stack, args: argparse.Namespace) -> Measured:
    made.fresh()
    plain = plain_app(made.redis_url)
    # Prefork keeps one call per process in flight: a small backlog lasts the whole window.
    enqueue_plain(plain.send, _backlog(args.plain_max_rate, args))
    env = plain_env(made.redis_url, made.sandbox.url)
    with running([start_plain("latency-plain", env, made.logs)]) as workers:
        result = measure_cpu(made, workers, WARMUP_S, args.seconds)
        left = plain_queue_depth(made.redis)
    if not left:
        print("  warning: plain Celery's backlog ran out inside the window")
    return result


def run(args: argparse.Namespace) -> list[Row]:
    knobs = {
        "rate_per_sec": HIGH_RATE_PER_SEC,
        "rate_per_min": HIGH_RATE_PER_MIN,
        "balance": 1e9,
        "latency_ms": args.latency_ms,
    }
    with stack(keep=args.keep, **knobs) as made:
        ours = run_msgworker(made, args, [])
        print(ours.line("msgworker"))
        theirs = run_plain(made, args)
        print(theirs.line("plain Celery"))
        extras = []
        for extra in args.also:
            options = shlex.split(extra)
            measured = run_msgworker(made, args, options)
            print(measured.line(f"msgworker {extra}"))
            extras.append(f"msgworker {extra}: {measured.window.accepted_per_s:,.0f}/s")
    mine, base = ours.window.accepted_per_s, theirs.window.accepted_per_s
    row = Row(
        benchmark=f"latency-bound (Gateway {args.latency_ms:g} ms, 1 worker, defaults, sends/s)",
        unit="/s",
        msgworker=mine,
        plain=base,
        target=f">= {TARGET:.0f}/s",
        met=mine >= TARGET,
        command="python bench/latency_bound.py",
        note="; ".join(extras),
    )
    print_rows([row])
    return [row]


def parser() -> argparse.ArgumentParser:
    p = base_parser(__doc__)
    p.add_argument("--seconds", type=float, default=20.0, help="measured window per run")
    p.add_argument("--latency-ms", type=float, default=300.0, help="the sandbox's answer time")
    p.add_argument("--max-rate", type=float, default=600.0, help="sizes msgworker's backlog")
    p.add_argument("--plain-max-rate", type=float, default=60.0, help="sizes plain's backlog")
    p.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="OPTIONS",
        help="another msgworker run with these worker options (repeatable)",
    )
    return p


def main(argv: list[str] | None = None) -> list[Row]:
    return bench_main(parser(), run, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
