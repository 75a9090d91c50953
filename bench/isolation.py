"""Isolation: one account's backlog must not hold another account's jobs back.

Two accounts in one deployment (an accounts file), each with its own key, which the sandbox
limits to 80/s and 4,800/min each. Account ``a`` has a backlog of ``--backlog`` jobs due now;
account ``b`` enqueues one job every 50 ms (20/s, well within its limit) for ``--seconds``.
Two ``msgworker worker`` commands with their defaults send both.

- b's enqueue-to-send: from the enqueue call to the sandbox accepting the message (p50, p99);
- a's goodput: what the sandbox accepted for a while b's jobs were coming, ÷ 80/s;
- 429 share: 429 answers ÷ all answers in that time, both accounts together.

Baseline, in the same run: b's trickle with no backlog of a (what b's latency is with nobody
in its way).

    .venv/bin/python bench/isolation.py [--backlog 50000] [--seconds 60] [--warmup 5]

Targets: b's p99 ≤ 1 s while a uses ≥ 98 % of its 80/s, and no 429 for either.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import (
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
KEYS = {"a": "sk_bench_account_a_0123456789", "b": "sk_bench_account_b_0123456789"}
# The sandbox labels keys key1, key2… in the order it was given them.
LABELS = {"a": "key1", "b": "key2"}
P99_TARGET_S = 1.0
GOODPUT_TARGET = 0.98
TRICKLE_EVERY_S = 0.05
COMMAND = "python bench/isolation.py"


def accounts_file(logs: Path) -> Path:
    path = logs / "accounts.toml"
    path.write_text(
        "".join(f'[accounts.{name}]\napi_key_env = "BENCH_KEY_{name.upper()}"\n' for name in KEYS)
    )
    return path


def run_case(made: Stack, args: argparse.Namespace, backlog: int) -> Trickled:
    made.fresh()
    path = accounts_file(made.logs)
    runtime = msgworker_runtime(made.redis_url, accounts_file=path)
    if backlog:
        started = time.monotonic()
        enqueue_msgworker(runtime, backlog, options={"account": "a"})
        print(f"  a's backlog of {backlog:,} enqueued in {time.monotonic() - started:.1f} s")
    env = msgworker_env(made.redis_url, made.sandbox.url, accounts_file=str(path))
    env.update({f"BENCH_KEY_{name.upper()}": key for name, key in KEYS.items()})
    workers = ready([msgworker_worker(f"isolation-mw{n}", env, made.logs) for n in (1, 2)])
    with running(workers):
        time.sleep(args.warmup)
        result = run_trickle(
            made,
            runtime,
            seconds=args.seconds,
            every_s=TRICKLE_EVERY_S,
            envelope=lambda text: {"message": text_payload(text), "account": "b"},
        )
    runtime.close()
    return result


def summary(name: str, result: Trickled) -> str:
    return (
        f"{name}: b's enqueue-to-send {result.latency_text()}; "
        f"accepted/s a {result.per_s(LABELS['a']):.1f}, "
        f"b {result.per_s(LABELS['b']):.1f}; 429 {result.window.rejected_429} of "
        f"{result.window.requests} answers"
    )


def run(args: argparse.Namespace) -> list[Row]:
    knobs = {
        "rate_per_sec": LIMIT_PER_SEC,
        "rate_per_min": LIMIT_PER_MIN,
        "balance": 1e9,
        "api_keys": list(KEYS.values()),
    }
    with stack(keep=args.keep, **knobs) as made:
        loaded = run_case(made, args, args.backlog)
        print(summary(f"with a's backlog of {args.backlog:,}", loaded))
        alone = run_case(made, args, 0) if args.baseline else None
        if alone:
            print(summary("b alone (baseline)", alone))
    p99 = percentile(loaded.latencies, 0.99)
    goodput = loaded.per_s(LABELS["a"]) / LIMIT_PER_SEC
    share_429 = loaded.window.share_429
    rows = [
        Row(
            "isolation: b's enqueue-to-send p99 (s), a's backlog due",
            "s",
            p99,
            percentile(alone.latencies, 0.99) if alone else None,
            f"<= {P99_TARGET_S:g} s",
            p99 <= P99_TARGET_S and loaded.missing == 0,
            COMMAND,
            "plain column: b alone, the same run",
        ),
        Row(
            "isolation: a's goodput, % of 80/s",
            "%",
            100 * goodput,
            None,
            f">= {GOODPUT_TARGET:.0%}",
            goodput >= GOODPUT_TARGET,
            COMMAND,
        ),
        Row(
            "isolation: answers 429, a and b",
            "%",
            100 * share_429,
            None,
            "0 %",
            loaded.window.rejected_429 == 0,
            COMMAND,
        ),
    ]
    print_acceptance(rows, "b alone")
    return rows


def parser() -> argparse.ArgumentParser:
    p = base_parser(__doc__)
    p.add_argument("--backlog", type=int, default=50_000, help="a's jobs due at the start")
    p.add_argument("--seconds", type=float, default=60.0, help="how long b's trickle runs")
    p.add_argument("--warmup", type=float, default=5.0, help="workers sending a before b starts")
    p.add_argument(
        "--no-baseline", dest="baseline", action="store_false", help="skip the b-alone run"
    )
    return p


def main(argv: list[str] | None = None) -> list[Row]:
    return bench_main(parser(), run, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
