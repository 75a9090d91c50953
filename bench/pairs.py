"""Pair pacing: how much of the Gateway's rate limit msgworker keeps when some recipients repeat.

The sandbox keeps its limits (80/s and 4,800/min per key, latency 0) and plays WhatsApp's pair
rate limit (131056 for a second message to one number within 6 s). A backlog of
``80 x (seconds + warm-up)`` jobs is enqueued up front, shuffled: ``--shared`` of them (10 %)
go to 50 recipients, the rest each to a recipient of its own. Two ``msgworker worker``
commands with their defaults (``PAIR_INTERVAL_S`` 6, ``PAIR_BURST`` 1) send them; the sandbox's
counters are read over the steady window (after the warm-up, before a 5 s tail).

The 50 shared recipients take about 8 messages/s at most (one each every 6 s), what 10 % of
80/s asks of them: their jobs wait for their pairs on the schedule, and the account's slots go
to the other recipients meanwhile.

    .venv/bin/python bench/pairs.py [--seconds 40] [--warmup 5] [--shared 0.1] [--recipients 50]

Targets: goodput ≥ 95 % of the limit; no message failed 131056.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import sys
import time
from typing import Any

import httpx
from common import (
    PAYLOAD,
    Row,
    Stack,
    base_parser,
    distinct,
    measure_seconds,
    msgworker_env,
    msgworker_runtime,
    msgworker_worker,
    print_rows,
    ready,
    running,
    stack,
    write_json,
)

from worker.dev.localredis import free_port

LIMIT_PER_SEC = 80
LIMIT_PER_MIN = 4800
GOODPUT_TARGET = 0.95
PAIR_INTERVAL_S = 6.0
PAIR_RATE_LIMIT = 131056
TAIL_S = 5.0
SEED = 30
_PAIR_WAITS = re.compile(r"^msgworker_pair_waits_total\{[^}]*\} (\S+)$", re.MULTILINE)


def backlog(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The jobs' messages: ``shared`` of them to ``recipients`` numbers, shuffled among the rest,
    each to a number of its own."""
    count = math.ceil(LIMIT_PER_SEC * (args.seconds + args.warmup))
    shared = round(count * args.shared)
    numbers = [f"90534{n:07d}" for n in range(args.recipients)]
    messages = [{**PAYLOAD, "to": numbers[n % len(numbers)]} for n in range(shared)]
    messages += [distinct(PAYLOAD) for _ in range(count - shared)]
    random.Random(SEED).shuffle(messages)
    return messages


def pair_waits(ports: list[str]) -> float:
    """msgworker_pair_waits_total summed over the workers' /metrics."""
    total = 0.0
    for port in ports:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        total += sum(float(value) for value in _PAIR_WAITS.findall(text))
    return total


def run(args: argparse.Namespace) -> list[Row]:
    knobs: dict[str, Any] = {
        "rate_per_sec": LIMIT_PER_SEC,
        "rate_per_min": LIMIT_PER_MIN,
        "balance": 1e9,
        "pair_interval_s": PAIR_INTERVAL_S,
    }
    made: Stack
    with stack(keep=args.keep, **knobs) as made:
        started = time.monotonic()
        runtime = msgworker_runtime(made.redis_url)
        messages = backlog(args)
        for first in range(0, len(messages), 1000):
            runtime.producer.enqueue_many(messages[first : first + 1000])
        runtime.close()
        env = msgworker_env(made.redis_url, made.sandbox.url)
        ports = [str(free_port()) for _ in range(2)]
        workers = ready(
            [
                msgworker_worker(f"pairs-mw{n}", {**env, "MSGWORKER_METRICS_PORT": port}, made.logs)
                for n, port in enumerate(ports, 1)
            ]
        )
        with running(workers):
            total, _ = measure_seconds(
                made.sandbox, args.warmup, args.seconds - args.warmup - TAIL_S
            )
            waits = pair_waits(ports)
        accepted = made.sandbox.accepted()
        print(f"({time.monotonic() - started:.0f} s)")
    failed = sum(1 for m in accepted if m.get("meta_error") == PAIR_RATE_LIMIT)
    goodput = total.accepted_per_s / LIMIT_PER_SEC
    print(
        f"msgworker (2 x defaults): {total.accepted_per_s:5.1f} accepted/s = {goodput:6.1%} of "
        f"{LIMIT_PER_SEC}/s, {total.share_429:.2%} answered 429; {len(messages)} jobs, "
        f"{args.shared:.0%} to {args.recipients} recipients; {waits:.0f} pair waits; "
        f"{failed} failed 131056"
    )
    command = "python bench/pairs.py"
    rows = [
        Row(
            benchmark=f"pairs: goodput, % of 80/s ({args.shared:.0%} of jobs to "
            f"{args.recipients} recipients)",
            unit="%",
            msgworker=100 * goodput,
            plain=None,
            target=f">= {GOODPUT_TARGET:.0%}",
            met=goodput >= GOODPUT_TARGET,
            command=command,
            note=f"{waits:.0f} pair waits",
        ),
        Row(
            benchmark="pairs: messages failed 131056 (pair rate limit)",
            unit="",
            msgworker=failed,
            plain=None,
            target="0",
            met=failed == 0,
            command=command,
        ),
    ]
    print_rows(rows)
    return rows


def parser() -> argparse.ArgumentParser:
    p = base_parser(__doc__)
    p.add_argument("--seconds", type=float, default=40.0, help="backlog length and run time")
    p.add_argument("--warmup", type=float, default=5.0, help="not measured, at the start")
    p.add_argument("--shared", type=float, default=0.1, help="share of jobs to shared numbers")
    p.add_argument("--recipients", type=int, default=50, help="how many shared numbers")
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
