"""Utilisation: how much of the Gateway's rate limit each system turns into accepted sends.

The sandbox keeps its defaults (80/s and 4,800/min per key, latency 0). For each system a
backlog of ``80 x (seconds + warm-up)`` jobs is enqueued up front, two worker commands start,
and the sandbox's counters are read over the steady window (after the warm-up, before a 5 s
tail), second by second:

- msgworker: two ``msgworker worker`` commands with their defaults; the shared limiter
  reserves slots for both.
- plain Celery: two ``celery -A bench.plain_celery worker`` commands with Celery's defaults,
  task ``rate_limit="80/s"`` (per worker, as Celery enforces it) and a retry after
  ``Retry-After`` on 429: what a careful Celery user writes.
- plain Celery, retry only (``--variants`` includes ``retry``): no ``rate_limit``, the same
  retry on 429; the "let the Gateway push back" approach.

Goodput is accepted/s ÷ 80; the 429 share is 429 answers ÷ all answers; the ratio column is
msgworker ÷ plain Celery, one pair of rows per plain variant. "Up to N accepted within 100 ms"
shows bursts (80/s spread evenly would be 8); the gaps between accepted calls show jitter
(evenly spread, every gap would be 12.5 ms).

    .venv/bin/python bench/utilisation.py [--seconds 60] [--warmup 5] [--variants limited,retry]

Targets (the account's rate limit is used fully but never hammered): goodput ≥ 95 %
of the limit, 429 share ≤ 0.5 %.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from dataclasses import dataclass

from common import (
    Row,
    Stack,
    Window,
    Worker,
    base_parser,
    enqueue_msgworker,
    enqueue_plain,
    measure_seconds,
    msgworker_env,
    msgworker_runtime,
    msgworker_worker,
    peak_in,
    plain_app,
    plain_env,
    plain_worker,
    print_rows,
    ready,
    running,
    stack,
    write_json,
)

LIMIT_PER_SEC = 80
LIMIT_PER_MIN = 4800
GOODPUT_TARGET = 0.95
SHARE_429_TARGET = 0.005
TAIL_S = 5.0
VARIANTS = ("limited", "retry")
PLAIN_NAMES = {"limited": f"rate_limit {LIMIT_PER_SEC}/s + retry", "retry": "retry on 429 only"}


@dataclass(frozen=True)
class Result:
    name: str
    total: Window
    seconds: list[Window]
    peak_100ms: int
    gaps_ms: tuple[float, float, float]  # between accepted calls: 1st, 50th, 99th percentile

    def line(self) -> str:
        w = self.total
        with_429 = [s for s in self.seconds if s.rejected_429]
        worst = max((s.rejected_429 for s in self.seconds), default=0)
        return (
            f"{self.name:<34} {w.accepted_per_s:5.1f} accepted/s = "
            f"{w.accepted_per_s / LIMIT_PER_SEC:6.1%} of {LIMIT_PER_SEC}/s; "
            f"{w.requests / w.seconds:6.1f} requests/s, {w.share_429:6.1%} answered 429 "
            f"({len(with_429)} of {len(self.seconds)} seconds had 429s, at most {worst} in one;"
            f" up to {self.peak_100ms} accepted within 100 ms; gaps between accepted calls"
            f" p1 {self.gaps_ms[0]:.1f} ms, median {self.gaps_ms[1]:.1f} ms,"
            f" p99 {self.gaps_ms[2]:.1f} ms)"
        )


def _steady(made: Stack, args: argparse.Namespace, name: str, workers: list[Worker]) -> Result:
    with running(workers):
        total, seconds = measure_seconds(
            made.sandbox, args.warmup, args.seconds - args.warmup - TAIL_S
        )
    times = made.sandbox.accepted_times()
    steady = [t for t in times if t >= times[0] + args.warmup] if times else []
    return Result(name, total, seconds, peak_in(steady, 0.1), _gap_percentiles(steady))


def _gap_percentiles(times: list[float]) -> tuple[float, float, float]:
    """Percentiles of the time between consecutive accepted calls (pauses over 0.5 s left out)."""
    gaps = sorted(1000 * (b - a) for a, b in itertools.pairwise(times) if b - a < 0.5)
    if not gaps:
        return (0.0, 0.0, 0.0)
    pick = [gaps[min(len(gaps) - 1, int(q * len(gaps)))] for q in (0.01, 0.5, 0.99)]
    return (pick[0], pick[1], pick[2])


def _backlog(args: argparse.Namespace) -> int:
    return math.ceil(LIMIT_PER_SEC * (float(args.seconds) + float(args.warmup)))


def run_msgworker(made: Stack, args: argparse.Namespace) -> Result:
    made.fresh()
    runtime = msgworker_runtime(made.redis_url)
    enqueue_msgworker(runtime, _backlog(args))
    runtime.close()
    env = msgworker_env(made.redis_url, made.sandbox.url)
    workers = ready([msgworker_worker(f"util-mw{n}", env, made.logs) for n in (1, 2)])
    return _steady(made, args, "msgworker (2 x defaults)", workers)


def run_plain(made: Stack, args: argparse.Namespace, variant: str) -> Result:
    made.fresh()
    plain = plain_app(made.redis_url)
    task = plain.send_limited if variant == "limited" else plain.send_retry
    enqueue_plain(task, _backlog(args))
    env = plain_env(made.redis_url, made.sandbox.url, rate_limit=f"{LIMIT_PER_SEC}/s")
    workers = ready([plain_worker(f"util-{variant}{n}", env, made.logs) for n in (1, 2)])
    return _steady(made, args, f"plain Celery ({PLAIN_NAMES[variant]})", workers)


def run(args: argparse.Namespace) -> list[Row]:
    knobs = {"rate_per_sec": LIMIT_PER_SEC, "rate_per_min": LIMIT_PER_MIN, "balance": 1e9}
    results: dict[str, Result] = {}
    with stack(keep=args.keep, **knobs) as made:
        started = time.monotonic()
        results["msgworker"] = run_msgworker(made, args)
        print(results["msgworker"].line())
        for variant in args.variants:
            results[variant] = run_plain(made, args, variant)
            print(results[variant].line())
        print(f"({time.monotonic() - started:.0f} s)")
    ours = results["msgworker"].total
    burst = results["msgworker"].peak_100ms
    rows: list[Row] = []
    for number, variant in enumerate(args.variants or [None]):
        base = results[variant].total if variant else None
        plain = PLAIN_NAMES[variant] if variant else "no plain run"
        rows += [
            Row(
                benchmark=f"utilisation: goodput, % of 80/s (plain: {plain})",
                unit="%",
                msgworker=100 * ours.accepted_per_s / LIMIT_PER_SEC,
                plain=100 * base.accepted_per_s / LIMIT_PER_SEC if base else None,
                target=f">= {GOODPUT_TARGET:.0%}",
                met=ours.accepted_per_s / LIMIT_PER_SEC >= GOODPUT_TARGET,
                command="python bench/utilisation.py",
                note="2 worker commands each" if number == 0 else "",
            ),
            Row(
                benchmark=f"utilisation: requests answered 429 (plain: {plain})",
                unit="%",
                msgworker=100 * ours.share_429,
                plain=100 * base.share_429 if base else None,
                target=f"<= {SHARE_429_TARGET:.1%}",
                met=ours.share_429 <= SHARE_429_TARGET,
                command="python bench/utilisation.py",
                note=(
                    f"msgworker: up to {burst} accepted within 100 ms (80/s spread evenly: 8)"
                    if number == 0
                    else ""
                ),
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
    p.add_argument("--seconds", type=float, default=60.0, help="backlog length and run time")
    p.add_argument("--warmup", type=float, default=5.0, help="not measured, at the start")
    p.add_argument(
        "--variants",
        type=_variants,
        default=list(VARIANTS),
        help="plain-Celery variants, comma-separated (default: limited,retry)",
    )
    return p


def main(argv: list[str] | None = None) -> list[Row]:
    args = parser().parse_args(argv)
    if args.seconds <= args.warmup + TAIL_S + 1:
        parser().error(f"--seconds must exceed warm-up + {TAIL_S:g} s tail")
    rows = run(args)
    write_json(args.json_out, rows)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
