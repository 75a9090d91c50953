"""Drain: 20,000 dead letters replayed at 1,000/s after a top-up — achieved rate and 429 share.

The sandbox allows 1,000/s and 60,000/min; the account is configured to match
(``MSGWORKER_RATE_PER_SEC=1000``, ``MSGWORKER_RATE_PER_MIN=60000``). Two ``msgworker worker``
commands (defaults) run throughout.

1. The dead letters are made the way production makes them: ``--jobs`` jobs are enqueued with
   the sandbox's balance at 0; the first answers are BILL_001, the billing breaker opens and
   the rest are parked as BILL_001 without a call (not measured).
2. The balance is topped up, the sandbox's counters reset, and
   ``msgworker dlq replay --code BILL_001 --rate 1000`` runs (its own process, same settings).
3. From the sandbox's log of accepted messages: the send rate from the first to the last
   (and over the middle 80 %), and the share of calls answered 429.

For contrast (``--no-plain`` skips it), the machine's ceiling for plain Celery: as many bare
tasks (``bench.send_retry``) queued up front, two ``celery -A bench.plain_celery worker``
commands with Celery's defaults, no pacing and no DLQ: what 2 cores can send at all.

    .venv/bin/python bench/drain.py [--jobs 20000] [--rate 1000] [--workers 2]

Targets: ≥ 98 % of the set rate (where the machine can send that fast) and ≥ 0.95x the
plain-Celery ceiling, no call answered 429; per send the costs ``bench/overhead.py`` targets too
(Redis round trips, Redis CPU, worker CPU).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from common import (
    BIN,
    ROOT,
    Measured,
    Row,
    Stack,
    Worker,
    base_parser,
    bench_main,
    between,
    cost_rows,
    enqueue_msgworker,
    enqueue_plain,
    msgworker_env,
    msgworker_runtime,
    msgworker_worker,
    plain_app,
    plain_env,
    plain_worker,
    print_rows,
    print_script_calls,
    ready,
    running,
    script_calls,
    stack,
    take_sample,
    wait_until,
)

RATE_TARGET = 0.98
CEILING_TARGET = 0.95
SHARE_429_TARGET = 0.0


def _rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


def park_all(runtime: Any, args: argparse.Namespace) -> float:
    """Enqueue the jobs with no balance; returns how long parking them all took."""
    started = time.monotonic()
    enqueue_msgworker(runtime, args.jobs)
    dead_letters = runtime.dead_letters
    wait_until(
        lambda: dead_letters.counts().get("BILL_001", 0) >= args.jobs,
        timeout_s=args.timeout,
        interval_s=0.5,
        what="every job parked as BILL_001",
    )
    return time.monotonic() - started


@dataclass(frozen=True)
class Drained:
    """What the sandbox saw of one drain, and what it cost."""

    times: list[float]
    requests: int
    rejected_429: int
    cost: Measured

    @property
    def rate(self) -> float:
        return _rate(self.times)

    @property
    def middle_rate(self) -> float:
        return _rate(self.times[len(self.times) // 10 : len(self.times) * 9 // 10])

    @property
    def share_429(self) -> float:
        return self.rejected_429 / self.requests if self.requests else 0.0

    def line(self, name: str, rate: float) -> str:
        busy = sum(self.cost.cpu_us_per_send.values()) * len(self.times) / 1e6
        busy /= self.cost.window.seconds
        return (
            f"{name}: {len(self.times):,} sends at {self.rate:,.0f}/s first to last "
            f"({self.rate / rate:.1%} of {rate:g}/s), {self.middle_rate:,.0f}/s over the "
            f"middle 80 %; {self.rejected_429} of {self.requests:,} calls answered 429 "
            f"({self.share_429:.2%})\n  {self.cost.cpu_text()}; "
            f"these used {busy:.2f} of the {os.cpu_count()} cores"
        )


def _until_sent(made: Stack, workers: list[Worker], count: int, timeout_s: float) -> Drained:
    """Wait until the sandbox accepted ``count``; CPU counted from the call on."""
    before = take_sample(made, workers)
    wait_until(
        lambda: made.sandbox.stats()["accepted"] >= count,
        timeout_s=timeout_s,
        interval_s=0.5,
        what="every job sent",
    )
    cost = between(before, take_sample(made, workers))
    stats = made.sandbox.stats()
    rejected = stats["by_status"].get("429", 0)
    return Drained(made.sandbox.accepted_times(), stats["requests"], rejected, cost)


def run_msgworker(made: Stack, args: argparse.Namespace) -> Drained:
    per_min = int(args.rate * 60)
    made.fresh(balance=0)
    settings = {"rate_per_sec": int(args.rate), "rate_per_min": per_min}
    env = msgworker_env(made.redis_url, made.sandbox.url, **settings)
    runtime = msgworker_runtime(made.redis_url)
    names = [f"drain-mw{n}" for n in range(1, args.workers + 1)]
    with running(ready([msgworker_worker(name, env, made.logs) for name in names])) as workers:
        parked_in = park_all(runtime, args)
        parked = runtime.dead_letters.counts().get("BILL_001", 0)
        print(f"{parked:,} dead letters BILL_001 made in {parked_in:.0f} s (not measured)")
        made.sandbox.reset()
        made.sandbox.configure(balance=1e9)
        command = ["dlq", "replay", "--code", "BILL_001", "--rate", f"{args.rate:g}", "--json"]
        replay = subprocess.Popen(  # noqa: S603 - our console script
            [str(BIN / "msgworker"), *command],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if args.scripts:
            with script_calls(made.redis_url) as counts:
                drained = _until_sent(made, workers, parked, args.timeout)
            print("Requests to Redis during the drain (MONITOR; CPU figures not comparable):")
            print_script_calls(counts, len(drained.times))
        else:
            drained = _until_sent(made, workers, parked, args.timeout)
        out, _ = replay.communicate(timeout=args.timeout)
        print(f"dlq replay exited {replay.returncode}: {out.strip()[-300:]}")
    runtime.close()
    return drained


def run_plain(made: Stack, args: argparse.Namespace) -> Drained:
    """The machine's ceiling for plain Celery: a bare task, backlog up front, no pacing."""
    made.fresh(balance=1e9)
    enqueue_plain(plain_app(made.redis_url).send_retry, args.jobs)
    env = plain_env(made.redis_url, made.sandbox.url)
    names = [f"drain-plain{n}" for n in range(1, args.workers + 1)]
    with running(ready([plain_worker(name, env, made.logs) for name in names])) as workers:
        return _until_sent(made, workers, args.jobs, args.timeout)


def run(args: argparse.Namespace) -> list[Row]:
    knobs = {"rate_per_sec": int(args.rate), "rate_per_min": int(args.rate * 60)}
    with stack(keep=args.keep, **knobs) as made:
        ours = run_msgworker(made, args)
        print(ours.line("msgworker drain", args.rate))
        theirs = run_plain(made, args) if args.plain else None
        if theirs:
            print(theirs.line("plain Celery, same jobs up front (a ceiling)", args.rate))
    command = "python bench/drain.py"
    rate_row = Row(
        benchmark=f"drain: DLQ replay send rate, % of {args.rate:g}/s",
        unit="%",
        msgworker=100 * ours.rate / args.rate,
        plain=100 * theirs.rate / args.rate if theirs else None,
        target=f">= {RATE_TARGET:.0%}",
        met=ours.rate / args.rate >= RATE_TARGET,
        command=command,
        note=(
            f"{len(ours.times):,} replayed, {args.workers} worker commands; plain Celery = "
            "the same number of bare tasks queued up front (no DLQ, no pacing): a ceiling"
        ),
    )
    share_row = Row(
        benchmark="drain: calls answered 429",
        unit="%",
        msgworker=100 * ours.share_429,
        plain=100 * theirs.share_429 if theirs else None,
        target=f"<= {SHARE_429_TARGET:.1%}",
        met=ours.share_429 <= SHARE_429_TARGET,
        command=command,
    )
    rows = [rate_row, share_row]
    if theirs:
        rows.append(
            Row(
                benchmark="drain: send rate against the plain-Celery ceiling",
                unit="/s",
                msgworker=ours.rate,
                plain=theirs.rate,
                target=f">= {CEILING_TARGET:.2f}x",
                met=ours.rate >= CEILING_TARGET * theirs.rate,
                command=command,
            )
        )
        rows += cost_rows([ours.cost], [theirs.cost], command=command)
    print_rows(rows)
    return rows


def parser() -> argparse.ArgumentParser:
    p = base_parser(__doc__)
    p.add_argument("--jobs", type=int, default=20_000, help="dead letters to replay")
    p.add_argument("--rate", type=float, default=1000.0, help="replay rate and account limit/s")
    p.add_argument("--workers", type=int, default=2, help="msgworker worker commands")
    p.add_argument(
        "--scripts",
        action="store_true",
        help="count Redis requests by script during the drain (MONITOR: a diagnostic run)",
    )
    p.add_argument("--timeout", type=float, default=300.0, help="longest wait for a phase")
    p.add_argument(
        "--no-plain", dest="plain", action="store_false", help="skip the plain-Celery ceiling"
    )
    return p


def main(argv: list[str] | None = None) -> list[Row]:
    return bench_main(parser(), run, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
