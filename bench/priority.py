"""Priority lanes: a one-time code must not wait behind a bulk blast of its own account.

One account, limited by the sandbox to 80/s and 4,800/min. ``--backlog`` ``bulk`` jobs are due
at the start; a ``high`` job is enqueued every 100 ms for ``--seconds``. Two ``msgworker worker``
commands with their defaults send both.

- high's enqueue-to-send: from the enqueue call to the sandbox accepting the message (p50, p99);
- the account's use of its limit: what the sandbox accepted while high jobs were coming ÷ 80/s;
- 429 share: 429 answers ÷ all answers in that time.

Baseline, in the same run: the same high trickle with no bulk backlog.

    .venv/bin/python bench/priority.py [--backlog 20000] [--seconds 60] [--warmup 5]

Targets: high's p99 ≤ 0.5 s while the limit stays ≥ 98 % used.
"""

from __future__ import annotations

import argparse
import sys
import time

from common import (
    API_KEY,
    Row,
    Stack,
    Trickled,
    base_parser,
    bench_main,
    enqueue_msgworker,
    msgworker_env,
    msgworker_runtime,
    msgworker_worker,
    percentile,
    print_acceptance,
    ready,
    run_trickle,
    running,
    stack,
    text_payload,
)

LIMIT_PER_SEC = 80
LIMIT_PER_MIN = 4800
P99_TARGET_S = 0.5
GOODPUT_TARGET = 0.98
TRICKLE_EVERY_S = 0.1
COMMAND = "python bench/priority.py"


def run_case(made: Stack, args: argparse.Namespace, backlog: int) -> Trickled:
    made.fresh()
    runtime = msgworker_runtime(made.redis_url)
    if backlog:
        started = time.monotonic()
        enqueue_msgworker(runtime, backlog, options={"priority": "bulk"})
        print(f"  {backlog:,} bulk jobs enqueued in {time.monotonic() - started:.1f} s")
    env = msgworker_env(made.redis_url, made.sandbox.url)
    workers = ready([msgworker_worker(f"priority-mw{n}", env, made.logs) for n in (1, 2)])
    with running(workers):
        time.sleep(args.warmup)
        result = run_trickle(
            made,
            runtime,
            seconds=args.seconds,
            every_s=TRICKLE_EVERY_S,
            envelope=lambda text: {"message": text_payload(text), "priority": "high"},
        )
    runtime.close()
    return result


def summary(name: str, result: Trickled) -> str:
    return (
        f"{name}: high's enqueue-to-send {result.latency_text()}; "
        f"accepted {result.window.accepted_per_s:.1f}/s; 429 "
        f"{result.window.rejected_429} of {result.window.requests} answers"
    )


def run(args: argparse.Namespace) -> list[Row]:
    knobs = {
        "rate_per_sec": LIMIT_PER_SEC,
        "rate_per_min": LIMIT_PER_MIN,
        "balance": 1e9,
        "api_keys": [API_KEY],
    }
    with stack(keep=args.keep, **knobs) as made:
        loaded = run_case(made, args, args.backlog)
        print(summary(f"behind {args.backlog:,} bulk", loaded))
        alone = run_case(made, args, 0) if args.baseline else None
        if alone:
            print(summary("high alone (baseline)", alone))
    p99 = percentile(loaded.latencies, 0.99)
    used = loaded.window.accepted_per_s / LIMIT_PER_SEC
    rows = [
        Row(
            "priority: high's enqueue-to-send p99 (s), bulk backlog due",
            "s",
            p99,
            percentile(alone.latencies, 0.99) if alone else None,
            f"<= {P99_TARGET_S:g} s",
            p99 <= P99_TARGET_S and loaded.missing == 0,
            COMMAND,
            "plain column: high alone, the same run",
        ),
        Row(
            "priority: the account's limit used, % of 80/s",
            "%",
            100 * used,
            None,
            f">= {GOODPUT_TARGET:.0%}",
            used >= GOODPUT_TARGET,
            COMMAND,
            f"429: {loaded.window.rejected_429} of {loaded.window.requests} answers",
        ),
    ]
    print_acceptance(rows, "high alone")
    return rows


def parser() -> argparse.ArgumentParser:
    p = base_parser(__doc__)
    p.add_argument("--backlog", type=int, default=20_000, help="bulk jobs due at the start")
    p.add_argument("--seconds", type=float, default=60.0, help="how long the high trickle runs")
    p.add_argument("--warmup", type=float, default=5.0, help="workers sending bulk first")
    p.add_argument(
        "--no-baseline", dest="baseline", action="store_false", help="skip the high-alone run"
    )
    return p


def main(argv: list[str] | None = None) -> list[Row]:
    return bench_main(parser(), run, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
