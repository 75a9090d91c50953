"""Ten accounts at 80/s each: aggregate sends/s against the plain-Celery ceiling, 429s per account.

One accounts file names ``--accounts`` accounts (10), each with a sandbox key of its own that the
sandbox limits to ``--rate``/s (80) and 60 times that a minute, and the same ceilings in the
accounts file. Two ``msgworker worker`` commands (defaults) run; ``--jobs`` jobs per account
(2,000) are enqueued, interleaved 100 at a time across the accounts, and the run lasts until the
sandbox has accepted every one. Measured:

- aggregate sends/s from the first accepted to the last (and over the middle 80 %), against
  the accounts' total limit (10 x 80 = 800/s) and against the ceiling below;
- each account's share of calls answered 429 (the sandbox counts answers per key);
- Redis round trips per send, all clients (broker and state): the read events Redis processed
  (``total_reads_processed``: a pipeline's commands arrive in one), with the commands per send
  by name beside them (the commands scripts run inside an EVALSHA counted too);
- CPU microseconds per send of the workers, Redis and the sandbox.

The ceiling (``--no-plain`` skips it): as many bare tasks (``bench.send_retry``) queued up front
on one key without a limit, two ``celery -A bench.plain_celery worker`` commands with Celery's
defaults: what this machine sends at all with plain Celery.

    .venv/bin/python bench/accounts.py [--accounts 10] [--rate 80] [--jobs 2000] [--workers 2]

Targets: aggregate >= 97 % of the plain ceiling, or of the accounts' limits where plain Celery
(no limiter, one unlimited key) sends more than they allow; every account's 429 share <= 0.2 %.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    HIGH_RATE_PER_MIN,
    HIGH_RATE_PER_SEC,
    Measured,
    Row,
    Stack,
    Worker,
    base_parser,
    bench_main,
    between,
    enqueue_msgworker,
    enqueue_plain,
    msgworker_env,
    msgworker_runtime,
    msgworker_worker,
    plain_app,
    plain_env,
    plain_worker,
    print_rows,
    ready,
    running,
    stack,
    take_sample,
    wait_until,
)

RATIO_TARGET = 0.97
SHARE_429_TARGET = 0.002
INTERLEAVE = 100  # jobs of one account in a row when the backlog is enqueued
TOP_COMMANDS = 8


def _rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


@dataclass(frozen=True)
class Account:
    name: str
    key: str
    label: str  # the sandbox's name for the key, which its per-key counts use


@dataclass(frozen=True)
class Run:
    """What the sandbox and Redis saw of one run, and what it cost."""

    times: list[float]
    by_label: dict[str, list[float]]  # each key's accepted times
    cost: Measured
    by_key: dict[str, dict[str, int]]
    commands: dict[str, int]  # Redis calls by command during the run, scripts' included
    reads: int  # read events Redis processed during the run: its round trips

    @property
    def rate(self) -> float:
        return _rate(self.times)

    @property
    def middle_rate(self) -> float:
        return _rate(self.times[len(self.times) // 10 : len(self.times) * 9 // 10])

    def account_rate(self, label: str) -> float:
        """The key's accepted/s over the middle 80 % of its own sends."""
        times = self.by_label.get(label, [])
        return _rate(times[len(times) // 10 : len(times) * 9 // 10])

    def share_429(self, label: str) -> float:
        answers = self.by_key.get(label, {})
        total = sum(answers.values())
        return answers.get("RATE_001", 0) / total if total else 0.0

    @property
    def commands_per_send(self) -> float:
        return sum(self.commands.values()) / max(len(self.times), 1)

    @property
    def round_trips_per_send(self) -> float:
        return self.reads / max(len(self.times), 1)

    def commands_text(self) -> str:
        sends = max(len(self.times), 1)
        ranked = sorted(self.commands.items(), key=lambda kv: -kv[1])[:TOP_COMMANDS]
        return ", ".join(f"{name} {calls / sends:.2f}" for name, calls in ranked)


def command_calls(made: Stack) -> dict[str, int]:
    """Calls per command since Redis started (``INFO commandstats``), and under ``(reads)`` the
    read events it processed (``INFO stats``)."""
    stats: dict[str, Any] = made.redis.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
    calls["(reads)"] = int(made.redis.info("stats")["total_reads_processed"])
    return calls


def measured_run(
    made: Stack, workers: list[Worker], count: int, timeout_s: float, enqueue: Any
) -> Run:
    """Sample, ``enqueue()``, wait until the sandbox accepted ``count``, sample again."""
    calls_before = command_calls(made)
    before = take_sample(made, workers)
    enqueue()
    wait_until(
        lambda: made.sandbox.stats()["accepted"] >= count,
        timeout_s=timeout_s,
        interval_s=0.5,
        what="every job sent",
    )
    cost = between(before, take_sample(made, workers))
    calls_after = command_calls(made)
    commands = {
        name: calls - calls_before.get(name, 0)
        for name, calls in calls_after.items()
        if calls > calls_before.get(name, 0) and name != "info"
    }
    reads = commands.pop("(reads)", 0)
    stats = made.sandbox.stats()
    accepted = made.sandbox.accepted()
    by_label: dict[str, list[float]] = {}
    for message in accepted:
        by_label.setdefault(message["key_label"], []).append(message["at"])
    times = [message["at"] for message in accepted]
    return Run(times, by_label, cost, stats["by_key"], commands, reads)


def set_up_accounts(made: Stack, args: argparse.Namespace) -> tuple[list[Account], Path]:
    """A sandbox key per account with the account's limits, and the accounts file naming them."""
    per_min = args.rate * 60
    accounts = []
    for n in range(args.accounts):
        key = f"sk_bench_account_{n:02d}_5e1f"
        spec = {"api_key": key, "rate_per_sec": args.rate, "rate_per_min": per_min}
        label = made.sandbox.post("/sandbox/keys", spec)["key_label"]
        accounts.append(Account(f"brand_{n:02d}", key, label))
    path = made.logs / "accounts.toml"
    path.write_text(
        "".join(
            f'[accounts.{a.name}]\napi_key_env = "BENCH_KEY_{n:02d}"\n'
            f"rate_per_sec = {args.rate}\nrate_per_min = {per_min}\n"
            for n, a in enumerate(accounts)
        )
    )
    return accounts, path


def run_msgworker(made: Stack, args: argparse.Namespace) -> tuple[Run, list[Account]]:
    made.fresh()
    accounts, accounts_file = set_up_accounts(made, args)
    env = msgworker_env(made.redis_url, made.sandbox.url, accounts_file=str(accounts_file))
    env |= {f"BENCH_KEY_{n:02d}": a.key for n, a in enumerate(accounts)}
    runtime = msgworker_runtime(made.redis_url, accounts_file=accounts_file)

    def enqueue() -> None:
        for _ in range(0, args.jobs, INTERLEAVE):
            for account in accounts:
                options = {"account": account.name}
                enqueue_msgworker(runtime, INTERLEAVE, batch=INTERLEAVE, options=options)

    total = args.accounts * (args.jobs // INTERLEAVE * INTERLEAVE)
    names = [f"accounts-mw{n}" for n in range(1, args.workers + 1)]
    with running(ready([msgworker_worker(name, env, made.logs) for name in names])) as workers:
        run = measured_run(made, workers, total, args.timeout, enqueue)
    runtime.close()
    return run, accounts


def run_plain(made: Stack, args: argparse.Namespace) -> Run:
    """The machine's ceiling for plain Celery: bare tasks, backlog up front, no limit."""
    made.fresh(balance=1e9)
    total = args.accounts * (args.jobs // INTERLEAVE * INTERLEAVE)
    env = plain_env(made.redis_url, made.sandbox.url)
    names = [f"accounts-plain{n}" for n in range(1, args.workers + 1)]
    task = plain_app(made.redis_url).send_retry
    with running(ready([plain_worker(name, env, made.logs) for name in names])) as workers:
        return measured_run(made, workers, total, args.timeout, lambda: enqueue_plain(task, total))


def line(name: str, run: Run) -> str:
    return (
        f"{name}: {len(run.times):,} sends at {run.rate:,.0f}/s first to last, "
        f"{run.middle_rate:,.0f}/s over the middle 80 %\n"
        f"  {run.cost.cpu_text()}\n"
        f"  Redis round trips per send {run.round_trips_per_send:.2f}; commands per send "
        f"{run.commands_per_send:.2f} (scripts' included): {run.commands_text()}"
    )


def run(args: argparse.Namespace) -> list[Row]:
    # The sandbox's own limit is for keys without limits of their own: only plain Celery's.
    knobs = {"rate_per_sec": HIGH_RATE_PER_SEC, "rate_per_min": HIGH_RATE_PER_MIN}
    with stack(keep=args.keep, **knobs) as made:
        ours, accounts = run_msgworker(made, args)
        print(line(f"msgworker, {args.accounts} accounts at {args.rate}/s", ours))
        shares = {a.name: ours.share_429(a.label) for a in accounts}
        print(
            "  429 share per account: "
            + ", ".join(f"{name} {share:.2%}" for name, share in shares.items())
        )
        used = {a.name: ours.account_rate(a.label) / args.rate for a in accounts}
        print(
            "  each account's limit used over its own middle 80 %: "
            + ", ".join(f"{name} {share:.1%}" for name, share in used.items())
        )
        theirs = run_plain(made, args) if args.plain else None
        if theirs:
            print(
                line("plain Celery, bare tasks up front on one unlimited key (a ceiling)", theirs)
            )
    limit = args.accounts * args.rate
    # Plain Celery has no limiter: on a machine that sends more than the accounts' limits allow,
    # its rate is not one msgworker could reach, and the limits are the ceiling.
    ceiling = min(theirs.rate, limit) if theirs else None
    command = "python bench/accounts.py"
    rows = [
        Row(
            benchmark=f"accounts: {args.accounts} x {args.rate}/s, aggregate sends/s",
            unit="sends/s",
            msgworker=ours.rate,
            plain=theirs.rate if theirs else None,
            target=f">= {RATIO_TARGET:.0%} of plain or limits",
            met=ours.rate / ceiling >= RATIO_TARGET if ceiling else None,
            command=command,
            note=(
                f"{ours.rate / limit:.1%} of the accounts' {limit:g}/s"
                + (f", {ours.rate / ceiling:.2f}x the lower of that and plain's" if ceiling else "")
                + f"; {ours.middle_rate:,.0f}/s over the middle 80 %"
                + f"; {args.workers} worker commands"
            ),
        ),
        Row(
            benchmark="accounts: worst account's calls answered 429",
            unit="%",
            msgworker=100 * max(shares.values()),
            plain=None,
            target=f"<= {SHARE_429_TARGET:.1%}",
            met=max(shares.values()) <= SHARE_429_TARGET,
            command=command,
        ),
        Row(
            benchmark="accounts: Redis round trips per send (broker and state)",
            unit="",
            msgworker=ours.round_trips_per_send,
            plain=theirs.round_trips_per_send if theirs else None,
            target="-",
            met=None,
            command=command,
            note=(
                f"commands per send, scripts' included: {ours.commands_per_send:.1f}"
                + (f" (plain {theirs.commands_per_send:.1f})" if theirs else "")
            ),
        ),
        Row(
            benchmark="accounts: worker CPU per send",
            unit="us",
            msgworker=ours.cost.cpu_us_per_send["workers"],
            plain=theirs.cost.cpu_us_per_send["workers"] if theirs else None,
            target="-",
            met=None,
            command=command,
        ),
        Row(
            benchmark="accounts: Redis CPU per send",
            unit="us",
            msgworker=ours.cost.cpu_us_per_send["redis"],
            plain=theirs.cost.cpu_us_per_send["redis"] if theirs else None,
            target="-",
            met=None,
            command=command,
        ),
    ]
    print_rows(rows)
    return rows


def parser() -> argparse.ArgumentParser:
    p = base_parser(__doc__)
    p.add_argument("--accounts", type=int, default=10, help="accounts, each with its own key")
    p.add_argument("--rate", type=int, default=80, help="each account's limit per second")
    p.add_argument("--jobs", type=int, default=2000, help="backlog per account (x 100)")
    p.add_argument("--workers", type=int, default=2, help="worker commands (both sides)")
    p.add_argument("--timeout", type=float, default=300.0, help="longest wait for a run")
    p.add_argument(
        "--no-plain", dest="plain", action="store_false", help="skip the plain-Celery ceiling"
    )
    return p


def main(argv: list[str] | None = None) -> list[Row]:
    return bench_main(parser(), run, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
