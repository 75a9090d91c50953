"""Every benchmark in sequence, then one summary table (plain text, or Markdown for the docs).

    .venv/bin/python bench/run_all.py [--only utilisation,overhead] [--quick] [--markdown]
                                      [--json-out results.json]

Each benchmark starts its own redis-server, sandbox and workers, so they never share state;
``--quick`` shortens every one (for a smoke run; the figures get noisier). With the defaults the
whole run takes about 15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import accounts
import drain
import enqueue
import latency_bound
import memory
import overhead
import utilisation
from common import Row, machine_line, number, print_table, ratio_text, verdict

BENCHMARKS: dict[str, tuple[Callable[[list[str]], list[Row]], list[str]]] = {
    # name: (main, the --quick arguments)
    "utilisation": (utilisation.main, ["--window", "15", "--messages", "1700"]),
    "latency_bound": (latency_bound.main, ["--seconds", "10"]),
    "overhead": (overhead.main, ["--seconds", "8", "--rounds", "1"]),
    "enqueue": (enqueue.main, ["--jobs", "5000", "--rounds", "1"]),
    "memory": (memory.main, ["--jobs", "20000", "--rescheduled", "3000", "--settle", "4"]),
    "drain": (drain.main, ["--jobs", "4000"]),
    "accounts": (accounts.main, ["--jobs", "200"]),
}


def markdown(rows: list[Row]) -> str:
    lines = [
        "| benchmark | msgworker | plain Celery | ratio | target | command |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = "" if r.met is None else (" ✓" if r.met else " ✗")
        lines.append(
            f"| {r.benchmark} | {number(r.msgworker, r.unit)} | {number(r.plain, r.unit)} "
            f"| {ratio_text(r)} | {r.target}{met} | `{r.command}` |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--only", help=f"comma-separated, from: {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="shorter runs, noisier figures")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--json-out", help="write every row to this JSON file")
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}")

    rows: list[Row] = []
    failed: list[str] = []
    started = time.monotonic()
    for name in chosen:
        run, quick = BENCHMARKS[name]
        print(f"\n===== {name} =====", flush=True)
        began = time.monotonic()
        try:
            rows += run(quick if args.quick else [])
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others
            traceback.print_exc()
            failed.append(name)
        print(f"({name}: {time.monotonic() - began:.0f} s)", flush=True)

    print(f"\n===== summary ({time.monotonic() - started:.0f} s; {machine_line()}) =====")
    headers = ("benchmark", "msgworker", "plain Celery", "ratio", "target", "", "command")
    print_table(
        headers,
        [
            (
                r.benchmark,
                number(r.msgworker, r.unit),
                number(r.plain, r.unit),
                ratio_text(r),
                r.target,
                verdict(r.met),
                r.command,
            )
            for r in rows
        ],
    )
    for r in rows:
        if r.note:
            print(f"  {r.benchmark}: {r.note}")
    if failed:
        print(f"FAILED to run: {', '.join(failed)}")
    if args.markdown:
        print()
        print(markdown(rows))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps([r.to_dict() for r in rows], indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
