"""Utilisation: how much of the Gateway's rate limit each system turns into accepted sends.

The sandbox's key allows ``--rate`` calls a second and 60 times that a minute (80/s and
4,800/min by default, latency 0). For each system a backlog of ``--messages`` jobs (45 s of the
limit by default) is enqueued up front, two worker commands start, and the sandbox's record of
every request is read over the window from its first request + ``--warmup`` (5 s) to
+ ``--warmup`` + ``--window`` (30 s):

- msgworker: two ``msgworker worker`` commands with their defaults; the shared limiter
  reserves slots for both.
- plain Celery: two ``celery -A bench.plain_celery worker`` commands with Celery's defaults,
  task ``rate_limit="<rate>/s"`` (per worker, as Celery enforces it) and a retry after
  ``Retry-After`` on 429: what a careful Celery user writes.
- plain Celery, retry only (``--variants`` includes ``retry``): no ``rate_limit``, the same
  retry on 429; the "let the Gateway push back" approach.

Goodput is accepted/s ÷ rate; the 429 share is 429 answers ÷ all answers; the ratio column is
msgworker ÷ plain Celery, one pair of rows per plain variant. ``--runs`` repeats msgworker's run
and reports the median and the worst. What the sandbox saw of the arrivals tells limiter error
from machine noise: "up to N accepted within 100 ms" shows bursts (80/s spread evenly would be
8); the gaps between accepted calls show their jitter (evenly spread at 80/s, every gap would be
12.5 ms); the closest approach is how near any call came to a 429: the least time, over the
Gateway's second, between a call and the one ``rate`` calls before it (0 ms: on the edge).

    .venv/bin/python bench/utilisation.py [--rate 80] [--messages 3600] [--runs 3]
                                          [--variants limited,retry]

Targets (the account's rate limit is used fully but never hammered): goodput ≥ 98.5 %
of the limit, 429 share ≤ 0.2 %.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

from common import (
    Row,
    Stack,
    Worker,
    base_parser,
    enqueue_msgworker,
    enqueue_plain,
    msgworker_env,
    msgworker_runtime,
    msgworker_worker,
    peak_in,
    percentile,
    plain_app,
    plain_env,
    plain_worker,
    print_rows,
    ready,
    running,
    stack,
    wait_until,
    write_json,
)

GOODPUT_TARGET = 0.985
SHARE_429_TARGET = 0.002
VARIANTS = ("limited", "retry")
PLAIN_NAMES = {"limited": "rate_limit + retry", "retry": "retry on 429 only"}


@dataclass(frozen=True)
class Result:
    """What the sandbox saw of one system's calls over the window."""

    name: str
    rate: int
    window_s: float
    requests: int
    accepted: int
    refused: int  # answered 429
    peak_100ms: int
    gaps_ms: tuple[float, float, float]  # between accepted calls: 1st, 50th, 99th percentile
    closest_ms: tuple[float, float]  # closest approach to a 429: least, 1st percentile

    @property
    def goodput(self) -> float:
        return self.accepted / self.window_s / self.rate

    @property
    def share_429(self) -> float:
        return self.refused / self.requests if self.requests else 0.0

    def line(self) -> str:
        return (
            f"{self.name:<34} {self.accepted / self.window_s:6.1f} accepted/s = "
            f"{self.goodput:6.1%} of {self.rate}/s; {self.requests / self.window_s:6.1f}"
            f" requests/s, {self.share_429:6.2%} answered 429 ({self.refused});"
            f" up to {self.peak_100ms} accepted within 100 ms; gaps between accepted calls"
            f" p1 {self.gaps_ms[0]:.1f} ms, median {self.gaps_ms[1]:.1f} ms,"
            f" p99 {self.gaps_ms[2]:.1f} ms; closest approach to a 429 {self.closest_ms[0]:.1f} ms"
            f" (p1 {self.closest_ms[1]:.1f} ms)"
        )


def measured(
    name: str, rate: int, arrivals: list[dict[str, Any]], args: argparse.Namespace
) -> Result:
    """The window's figures from the sandbox's record of every request."""
    if not arrivals:
        raise RuntimeError(f"{name}: the sandbox saw no request")
    start = arrivals[0]["at"] + args.warmup
    inside = [a for a in arrivals if start <= a["at"] < start + args.window]
    accepted = [a["at"] for a in inside if a["code"] == "OK"]
    everything_accepted = [a["at"] for a in arrivals if a["code"] == "OK"]
    return Result(
        name,
        rate,
        args.window,
        requests=len(inside),
        accepted=len(accepted),
        refused=sum(1 for a in inside if a["code"] == "RATE_001"),
        peak_100ms=peak_in(accepted, 0.1),
        gaps_ms=_gap_percentiles(accepted),
        closest_ms=_closest(everything_accepted, accepted, rate),
    )


def _gap_percentiles(times: list[float]) -> tuple[float, float, float]:
    """Percentiles of the time between consecutive accepted calls (pauses over 0.5 s left out)."""
    gaps = [1000 * (b - a) for a, b in itertools.pairwise(times) if b - a < 0.5]
    return (percentile(gaps, 0.01), percentile(gaps, 0.5), percentile(gaps, 0.99))


def _closest(every: list[float], inside: list[float], rate: int) -> tuple[float, float]:
    """How near each accepted call of the window came to a 429: its time after the call ``rate``
    accepted calls before it, less the Gateway's second (ms); the least and the 1st percentile."""
    position = {at: n for n, at in enumerate(every)}
    room = [1000 * (at - every[position[at] - rate] - 1.0) for at in inside if position[at] >= rate]
    return (min(room, default=0.0), percentile(room, 0.01))


def _observe(
    made: Stack, args: argparse.Namespace, name: str, rate: int, workers: list[Worker]
) -> Result:
    """Run ``workers`` from the sandbox's first request to the window's end; the window."""
    with running(workers):
        if not wait_until(lambda: made.sandbox.stats()["requests"] > 0, timeout_s=60):
            raise RuntimeError(f"{name}: no request within 60 s")
        first = made.sandbox.arrivals()[0]["at"]
        time.sleep(max(0.0, first + args.warmup + args.window + 0.5 - time.time()))
    return measured(name, rate, made.sandbox.arrivals(), args)


def run_msgworker(made: Stack, args: argparse.Namespace, run: int) -> Result:
    made.fresh()
    runtime = msgworker_runtime(made.redis_url)
    enqueue_msgworker(runtime, args.messages)
    runtime.close()
    env = msgworker_env(made.redis_url, made.sandbox.url)
    workers = ready([msgworker_worker(f"util-mw{run}-{n}", env, made.logs) for n in (1, 2)])
    return _observe(made, args, "msgworker (2 x defaults)", args.rate, workers)


def run_plain(made: Stack, args: argparse.Namespace, variant: str) -> Result:
    made.fresh()
    plain = plain_app(made.redis_url)
    task = plain.send_limited if variant == "limited" else plain.send_retry
    enqueue_plain(task, args.messages)
    env = plain_env(made.redis_url, made.sandbox.url, rate_limit=f"{args.rate}/s")
    workers = ready([plain_worker(f"util-{variant}{n}", env, made.logs) for n in (1, 2)])
    name = f"plain Celery ({PLAIN_NAMES[variant]})"
    return _observe(made, args, name, args.rate, workers)


def run(args: argparse.Namespace) -> list[Row]:
    knobs = {"rate_per_sec": args.rate, "rate_per_min": 60 * args.rate, "balance": 1e9}
    ours: list[Result] = []
    plain: dict[str, Result] = {}
    with stack(keep=args.keep, **knobs) as made:
        started = time.monotonic()
        for n in range(args.runs):
            ours.append(run_msgworker(made, args, n + 1))
            print(ours[-1].line(), flush=True)
        for variant in args.variants:
            plain[variant] = run_plain(made, args, variant)
            print(plain[variant].line(), flush=True)
        print(f"({time.monotonic() - started:.0f} s)")
    goodput = statistics.median(r.goodput for r in ours)
    share = statistics.median(r.share_429 for r in ours)
    worst_goodput = min(r.goodput for r in ours)
    worst_share = max(r.share_429 for r in ours)
    of = f"{args.runs} runs: median (worst {worst_goodput:.1%})" if args.runs > 1 else "1 run"
    of_429 = f"{args.runs} runs: median (worst {worst_share:.2%})" if args.runs > 1 else "1 run"
    closest = min(r.closest_ms[0] for r in ours)
    command = f"python bench/utilisation.py --rate {args.rate} --runs {args.runs}"
    rows: list[Row] = []
    for number, variant in enumerate(args.variants or [None]):
        base = plain[variant] if variant else None
        against = PLAIN_NAMES[variant] if variant else "no plain run"
        first = number == 0
        rows += [
            Row(
                benchmark=f"utilisation: goodput, % of {args.rate}/s (plain: {against})",
                unit="%",
                msgworker=100 * goodput,
                plain=100 * base.goodput if base else None,
                target=f">= {GOODPUT_TARGET:.1%}",
                met=worst_goodput >= GOODPUT_TARGET,
                command=command,
                note=f"2 worker commands each; {of}" if first else "",
            ),
            Row(
                benchmark=f"utilisation: requests answered 429 (plain: {against})",
                unit="%",
                msgworker=100 * share,
                plain=100 * base.share_429 if base else None,
                target=f"<= {SHARE_429_TARGET:.1%}",
                met=worst_share <= SHARE_429_TARGET,
                command=command,
                note=f"{of_429}; closest approach to a 429: {closest:.1f} ms" if first else "",
            ),
        ]
    print_rows(rows)
    return rows


def _variants(text: str) -> list[str]:
    chosen = [v for v in text.split(",") if v]
    unknown = sorted(set(chosen) - set(VARIANTS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown variant {unknown[0]!r}; known: {VARIANTS}")
    return chosen


def parser() -> argparse.ArgumentParser:
    p = base_parser(__doc__)
    p.add_argument("--rate", type=int, default=80, help="the key's limit per second (default 80)")
    p.add_argument("--messages", type=int, help="the backlog (default: 45 s of the limit)")
    p.add_argument("--warmup", type=float, default=5.0, help="from the first request, not measured")
    p.add_argument("--window", type=float, default=30.0, help="measured, after the warm-up")
    p.add_argument("--runs", type=int, default=1, help="msgworker's runs (median and worst)")
    p.add_argument(
        "--variants",
        type=_variants,
        default=list(VARIANTS),
        help="plain-Celery variants, comma-separated ('' for none; default: limited,retry)",
    )
    return p


def main(argv: list[str] | None = None) -> list[Row]:
    args = parser().parse_args(argv)
    if args.rate < 1 or args.runs < 1 or args.window <= 0 or args.warmup < 0:
        parser().error("--rate and --runs must be at least 1, --window positive")
    args.messages = args.messages or math.ceil(args.rate * 45)
    rows = run(args)
    write_json(args.json_out, rows)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
