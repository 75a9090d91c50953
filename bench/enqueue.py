"""Enqueue throughput: msgworker's batched ``enqueue_many`` against Celery's ``apply_async`` loop.

Both write to the same private redis-server from this process:

- msgworker: ``Producer.enqueue_many`` (through a ``worker.service.runtime.Runtime``) in batches of
  ``--batch`` (1,000): every message validated, then one round trip per batch.
- plain Celery: ``send.apply_async(args=(body,))`` in a loop, as a Celery app enqueues one by
  one (the JSON body already built). For contrast it is also timed with one shared producer
  connection (``producer=``), Celery's fastest loop.

Runs alternate; each figure is the median of ``--rounds`` runs of ``--jobs`` jobs, on an
emptied Redis.

    .venv/bin/python bench/enqueue.py [--jobs 20000] [--batch 1000] [--rounds 3]

Target: msgworker ≥ 5x the apply_async loop.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

from common import (
    BODY,
    PAYLOAD,
    Row,
    Stack,
    base_parser,
    bench_main,
    msgworker_runtime,
    plain_app,
    print_rows,
    stack,
)

TARGET = 5.0


def _timed(made: Stack, jobs: int, enqueue: Callable[[], None]) -> float:
    """Jobs per second of one run on an emptied Redis."""
    made.redis.flushall()
    started = time.perf_counter()
    enqueue()
    return jobs / (time.perf_counter() - started)


def run(args: argparse.Namespace) -> list[Row]:
    ours: list[float] = []
    loop: list[float] = []
    shared: list[float] = []
    with stack(keep=args.keep) as made:
        runtime = msgworker_runtime(made.redis_url)
        task = plain_app(made.redis_url).send
        batch = [PAYLOAD] * args.batch

        def msgworker() -> None:
            for _ in range(args.jobs // args.batch):
                runtime.producer.enqueue_many(batch)

        def apply_async_loop() -> None:
            for _ in range(args.jobs):
                task.apply_async(args=(BODY,))

        def apply_async_shared() -> None:
            with task.app.producer_or_acquire() as producer:
                for _ in range(args.jobs):
                    task.apply_async(args=(BODY,), producer=producer)

        # Warm both (connections, script loading, first pydantic use) outside the timing.
        runtime.producer.enqueue_many(batch)
        task.apply_async(args=(BODY,))
        jobs = args.jobs // args.batch * args.batch
        for number in range(1, args.rounds + 1):
            ours.append(_timed(made, jobs, msgworker))
            loop.append(_timed(made, jobs, apply_async_loop))
            shared.append(_timed(made, jobs, apply_async_shared))
            print(
                f"round {number}: enqueue_many {ours[-1]:8,.0f} jobs/s   "
                f"apply_async loop {loop[-1]:7,.0f} jobs/s   "
                f"with one producer {shared[-1]:7,.0f} jobs/s"
            )
        runtime.close()
    mine, base, best = (statistics.median(v) for v in (ours, loop, shared))
    row = Row(
        benchmark=f"enqueue (batches of {args.batch:,} vs apply_async loop, jobs/s)",
        unit="/s",
        msgworker=mine,
        plain=base,
        target=f">= {TARGET:.0f}x",
        met=mine / base >= TARGET,
        command="python bench/enqueue.py",
        note=f"apply_async on one shared producer: {best:,.0f} jobs/s ({mine / best:.1f}x)",
    )
    print_rows([row])
    return [row]


def parser() -> argparse.ArgumentParser:
    p = base_parser(__doc__)
    p.add_argument("--jobs", type=int, default=20_000, help="jobs per run")
    p.add_argument("--batch", type=int, default=1000, help="enqueue_many batch size")
    p.add_argument("--rounds", type=int, default=3)
    return p


def main(argv: list[str] | None = None) -> list[Row]:
    return bench_main(parser(), run, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
