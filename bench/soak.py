"""Soak: the chaos scenarios of tests/system/test_chaos.py, longer and bigger, with their figures.

    .venv/bin/python bench/soak.py --minutes 10 [--kill-jobs 5000] [--fuzz-examples 2000]

Runs each scenario once at soak size (kill -9 loops over 5,000 jobs in both ambiguity modes,
warm shutdowns, Redis restarted under load with stranded dispatches waited out for real, 30%
faults and a 10 s outage, a halt and a billing episode in a 2,000-job run, delays past a 1 s
visibility timeout, 100,000 scheduled jobs), then repeats the kill -9 loop until the time is
up, then runs the fuzz suite with more examples. Prints one JSON line per scenario and the
totals; exits 1 when any invariant failed (lost or really duplicated jobs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import chaos  # noqa: E402 - after the path is set
from worker.dev.localredis import LocalRedis  # noqa: E402

Run = Callable[[chaos.Stage, LocalRedis], chaos.Result]


def scenarios(kill_jobs: int) -> list[tuple[str, bool, Run]]:
    """(name, append-only Redis, run) for each scenario at soak size."""
    return [
        (
            "kill-at-most-once",
            False,
            lambda s, _: chaos.kill_loop(
                s, jobs=kill_jobs, at_most_once=True, kill_every_s=3, settle_timeout_s=300
            ),
        ),
        (
            "kill-at-least-once",
            False,
            lambda s, _: chaos.kill_loop(
                s, jobs=kill_jobs, at_most_once=False, kill_every_s=3, settle_timeout_s=300
            ),
        ),
        ("sigterm", False, lambda s, _: chaos.sigterm_restart(s, jobs=2000, rounds=6)),
        (
            "redis-restart",
            True,
            lambda s, r: chaos.redis_restart(
                s, r, jobs=3000, restarts=4, gap_s=10, settle_timeout_s=400
            ),
        ),
        ("faults-outage", False, lambda s, _: chaos.faults_then_outage(s, jobs=2000)),
        (
            "halt-billing",
            False,
            lambda s, _: chaos.halt_and_billing(s, jobs=2000, billing_budget=300),
        ),
        ("visibility", False, lambda s, _: chaos.delays_past_visibility(s, jobs=1000, spread_s=15)),
        (
            "scheduled-100k",
            False,
            lambda s, _: chaos.scheduled_many(s, jobs=100_000, due_soon=500, wait_s=30),
        ),
    ]


def run_one(name: str, appendonly: bool, run: Run, directory: Path) -> dict[str, object]:
    """One scenario on a fresh private Redis and sandbox; its summary, or its failure."""
    scenario_dir = directory / f"{name}-{time.monotonic_ns()}"
    scenario_dir.mkdir()
    server = LocalRedis(scenario_dir, appendonly=appendonly)
    server.start()
    started = time.monotonic()
    try:
        with chaos.staged(server.url, scenario_dir) as stage:
            result = run(stage, server)
            leaks = stage.secrets_leaked(max_keys=5000)
            summary = result.summary()
            try:
                result.report.assert_holds()
                summary["invariants"] = "hold"
            except AssertionError as exc:
                summary["invariants"] = f"FAILED: {exc}"[:2000]
            summary["leaks"] = leaks
    except Exception as exc:  # noqa: BLE001 - a soak reports every failure and goes on
        summary = {
            "scenario": name,
            "invariants": f"ERROR: {exc!r}",
            "trace": traceback.format_exc()[-2000:],
        }
    finally:
        server.stop()
    summary["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(summary, default=str), flush=True)
    return summary


def fuzz(examples: int) -> dict[str, object]:
    """The fuzz suite with ``examples`` per property; how many inputs it tried."""
    env = {**os.environ, "FUZZ_EXAMPLES": str(examples)}
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/system/test_fuzz.py",
            "--hypothesis-show-statistics",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    # Hypothesis's statistics say "- N passing, 0 failing, and M invalid test cases" per test.
    tried = sum(
        int(line.split("passing")[0].split()[-1])
        for line in done.stdout.splitlines()
        if " passing, " in line
    )
    failures = [
        line
        for line in done.stdout.splitlines()
        if line.startswith(("FAILED", "E ", "Falsifying")) or line.lstrip().startswith("values=")
    ]
    lines = done.stdout.strip().splitlines()
    summary = {
        "scenario": "fuzz",
        "inputs_fuzzed": tried,
        "invariants": "hold" if done.returncode == 0 else "FAILED",
        "failures": failures[:20],
        "result": lines[-1] if lines else done.stderr[-500:],
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(summary), flush=True)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--kill-jobs", type=int, default=5000)
    parser.add_argument("--fuzz-examples", type=int, default=1000)
    args = parser.parse_args()
    deadline = time.monotonic() + args.minutes * 60
    summaries = []
    with tempfile.TemporaryDirectory(prefix="msgworker-soak-") as tmp:
        directory = Path(tmp)
        plan = scenarios(args.kill_jobs)
        for name, appendonly, run in plan:
            summaries.append(run_one(name, appendonly, run, directory))
        rounds = 0
        while time.monotonic() < deadline:
            name, appendonly, run = plan[rounds % 2]
            summaries.append(run_one(f"{name}-repeat", appendonly, run, directory))
            rounds += 1
    summaries.append(fuzz(args.fuzz_examples))
    totals: Counter[str] = Counter()
    faults: Counter[str] = Counter()
    for summary in summaries:
        for figure in (
            "jobs",
            "accepted",
            "lost",
            "duplicated",
            "ambiguous_duplicates",
            "real_duplicates",
            "kills",
            "restarts",
            "sigterms",
            "redis_restarts",
            "worker_exits",
            "stranded_dispatches",
            "gateway_requests",
            "inputs_fuzzed",
        ):
            value = summary.get(figure)
            if isinstance(value, int):
                totals[figure] += value
        faults.update(summary.get("faults") or {})
    failed = [s["scenario"] for s in summaries if str(s.get("invariants", "hold")) != "hold"]
    leaked = [s["scenario"] for s in summaries if s.get("leaks")]
    print(
        json.dumps(
            {
                "totals": dict(totals),
                "faults_injected": dict(faults),
                "failed": failed,
                "leaks": leaked,
            }
        ),
        flush=True,
    )
    return 1 if failed or leaked else 0


if __name__ == "__main__":
    sys.exit(main())
