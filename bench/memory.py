"""Memory: worker RSS before and after 100,000 delayed jobs (the worker process + its children).

- msgworker, scheduled: 100,000 jobs through ``enqueue_many`` with ``send_at`` an hour ahead,
  while one ``msgworker worker`` (defaults) runs; they wait in Redis's schedule.
- msgworker, rescheduled (``--rescheduled N``, default 10,000; 0 skips): N jobs due now; the
  sandbox answers the first calls RATE_001 with ``retry_after`` 3600 s, so the worker
  reschedules those and the account's cooldown sends every other job back to the schedule
  an hour out: N jobs pass through the worker and come out delayed. A first lot of 2,000
  warms the worker's threads up before "before" is read.
- plain Celery: 100,000 ``apply_async(countdown=3600)`` while one ``celery -A
  bench.plain_celery worker`` (defaults) runs: Celery's ETA keeps every one in worker memory.

RSS is VmRSS from /proc (median of a few reads once things settle).

    .venv/bin/python bench/memory.py [--jobs 100000] [--rescheduled 10000] [--settle 10]

Target: msgworker's growth < 20 MB.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from common import (
    Row,
    Stack,
    Worker,
    base_parser,
    bench_main,
    enqueue_msgworker,
    enqueue_plain,
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
    wait_until,
)

TARGET_MB = 20.0
WARM_UP_JOBS = 2000
DELAY_S = 3600
RATE_001 = {
    "code": "RATE_001",
    "status": 429,
    "group": "TOO_MANY_REQUESTS",
    "description": "Rate limit exceeded. Please try again later.",
    "params": {"limit_type": "min", "retry_after": f"{DELAY_S}s"},
    "headers": {"Retry-After": str(DELAY_S)},
}


def idle_cpu(worker: Worker, seconds: float) -> float:
    """The share of one core the worker uses while it has nothing to do."""
    before, started = worker.cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    return (worker.cpu_seconds() - before) / (time.monotonic() - started)


def settled_rss_mb(worker: Worker, settle_s: float) -> float:
    """Wait, then the median of a few RSS reads, in MB."""
    time.sleep(settle_s)
    reads = []
    for _ in range(5):
        reads.append(worker.rss_kib() / 1024)
        time.sleep(0.4)
    return statistics.median(reads)


def run_scheduled(made: Stack, args: argparse.Namespace) -> tuple[float, float]:
    made.fresh()
    runtime = msgworker_runtime(made.redis_url)
    env = msgworker_env(made.redis_url, made.sandbox.url)
    with running([start_msgworker("memory-mw", env, made.logs)]) as (worker,):
        before = settled_rss_mb(worker, args.settle)
        idle = idle_cpu(worker, args.settle)
        send_at = (datetime.now(UTC) + timedelta(seconds=DELAY_S)).isoformat()
        started = time.monotonic()
        enqueue_msgworker(runtime, args.jobs, options={"send_at": send_at})
        took = time.monotonic() - started
        after = settled_rss_mb(worker, args.settle)
        waiting = scheduled_jobs(runtime)
    runtime.close()
    print(
        f"msgworker, {args.jobs:,} scheduled {DELAY_S} s ahead (enqueued in {took:.1f} s): "
        f"RSS {before:.1f} -> {after:.1f} MB ({after - before:+.1f} MB); "
        f"{waiting:,} waiting in Redis's schedule; idle, it used {idle:.1%} of a core"
    )
    return before, after


def run_rescheduled(made: Stack, args: argparse.Namespace) -> tuple[float, float]:
    made.fresh()
    made.sandbox.post("/sandbox/script", {"answers": [RATE_001] * 200})
    runtime = msgworker_runtime(made.redis_url)
    env = msgworker_env(made.redis_url, made.sandbox.url)

    def back_later(count: int) -> bool:
        return scheduled_jobs(runtime, after=time.time() + DELAY_S / 2) >= count

    with running([start_msgworker("memory-mw-resched", env, made.logs)]) as (worker,):
        # A first lot warms every thread and pool up, so "before" is the working worker.
        warm = min(WARM_UP_JOBS, args.rescheduled)
        enqueue_msgworker(runtime, warm)
        wait_until(lambda: back_later(warm), timeout_s=args.timeout, what="the warm-up lot")
        before = settled_rss_mb(worker, args.settle)
        started = time.monotonic()
        enqueue_msgworker(runtime, args.rescheduled)
        total = warm + args.rescheduled
        wait_until(lambda: back_later(total), timeout_s=args.timeout, what="every job back")
        took = time.monotonic() - started
        after = settled_rss_mb(worker, args.settle)
        later = scheduled_jobs(runtime, after=time.time() + DELAY_S / 2) - warm
    runtime.close()
    calls = made.sandbox.stats()["requests"]
    print(
        f"msgworker, {args.rescheduled:,} due now, rescheduled {DELAY_S} s out by RATE_001 "
        f"({calls} calls in all; back on the schedule in {took:.1f} s, {later:,} there; "
        f"after a warm-up lot of {warm:,}): "
        f"RSS {before:.1f} -> {after:.1f} MB ({after - before:+.1f} MB)"
    )
    return before, after


def run_plain(made: Stack, args: argparse.Namespace) -> tuple[float, float]:
    made.fresh()
    plain = plain_app(made.redis_url)
    env = plain_env(made.redis_url, made.sandbox.url)
    with running([start_plain("memory-plain", env, made.logs)]) as (worker,):
        before = settled_rss_mb(worker, args.settle)
        idle = idle_cpu(worker, args.settle)
        started = time.monotonic()
        enqueue_plain(plain.send, args.jobs, countdown=DELAY_S)
        wait_until(
            lambda: plain_queue_depth(made.redis) == 0,
            timeout_s=args.timeout,
            what="the worker to take every ETA task",
        )
        took = time.monotonic() - started
        after = settled_rss_mb(worker, args.settle)
        left = plain_queue_depth(made.redis)
    print(
        f"plain Celery, {args.jobs:,} apply_async(countdown={DELAY_S}) "
        f"(enqueued and taken by the worker in {took:.1f} s, {left:,} left in the queue): "
        f"RSS {before:.1f} -> {after:.1f} MB ({after - before:+.1f} MB); "
        f"idle, it used {idle:.1%} of a core"
    )
    return before, after


def run(args: argparse.Namespace) -> list[Row]:
    with stack(keep=args.keep, balance=1e9) as made:
        ours = run_scheduled(made, args)
        resched = run_rescheduled(made, args) if args.rescheduled else None
        theirs = run_plain(made, args)
    growth = ours[1] - ours[0]
    worst = max(growth, resched[1] - resched[0]) if resched else growth
    note = f"RSS before: msgworker {ours[0]:.0f} MB, plain {theirs[0]:.0f} MB"
    if resched:
        note += f"; {args.rescheduled:,} rescheduled by RATE_001: {resched[1] - resched[0]:+.1f} MB"
    row = Row(
        benchmark=f"memory: worker RSS growth, {args.jobs:,} delayed jobs (MB)",
        unit="MB",
        msgworker=growth,
        plain=theirs[1] - theirs[0],
        target=f"< {TARGET_MB:.0f} MB",
        met=worst < TARGET_MB,
        command="python bench/memory.py",
        note=note,
    )
    print_rows([row])
    return [row]


def parser() -> argparse.ArgumentParser:
    p = base_parser(__doc__)
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--rescheduled", type=int, default=10_000, help="0 skips that phase")
    p.add_argument("--settle", type=float, default=8.0, help="seconds before reading RSS")
    p.add_argument("--timeout", type=float, default=240.0, help="longest wait for a phase")
    return p


def main(argv: list[str] | None = None) -> list[Row]:
    return bench_main(parser(), run, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
