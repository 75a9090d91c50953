"""Mutation testing of the pure core: how many deliberate small bugs the tests catch.

    .venv/bin/python bench/mutation.py [--keep] [--max-children N] [--fail-under 90]

mutmut copies worker/ into mutants/, makes every small change it knows in the modules that
``[tool.mutmut]`` in pyproject.toml names (a ``<`` for a ``<=``, a string for another, an
argument dropped), and runs the tests that reach each changed function against it. A mutant is
killed when a test fails or mypy refuses it; one that survives is a bug the tests would let
through, unless it changes nothing anyone can observe: those equivalent mutants are listed, each
with its reason, in docs/testing.md and taken out of the score here. Prints the score of each
module and overall; exits 1 when a module scores under ``--fail-under``.

A fresh run (the default) takes about four minutes on 2 cores. ``--keep`` reuses the verdicts
of the last run for functions that did not change (mutmut's cache; a changed test is not seen).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
# Where the tests' redis-servers keep their files during the run: a server that a mutant's
# test left running (a test killed at its time limit) is found by it and stopped.
SCRATCH = MUTANTS / "tmp"
EQUIVALENTS_PAGE = ROOT / "docs" / "testing.md"
# A row of the equivalents table: | `worker.send.answers.x__whole__mutmut_3` | ... |
EQUIVALENT_ROW = re.compile(r"^\|\s*`(worker\.[\w.ǁ]+__mutmut_\d+)`\s*\|")
# mutmut's exit codes (mutmut.stats.status_by_exit_code): a test failed, mypy refused it, or
# the tests ran out of time; everything else (0, and 33: no test reaches it) is a survivor.
KILLED_BY_TESTS = {1, 3}
CAUGHT_BY_MYPY = {37}
TIMED_OUT = {-24, 24, 36, 152, 255}


@dataclass
class Score:
    """One module's mutants by verdict."""

    mutants: int = 0
    killed: int = 0
    caught_by_mypy: int = 0
    equivalent: int = 0
    survivors: list[str] = field(default_factory=list)
    listed: set[str] = field(default_factory=set)  # the equivalents of docs/testing.md met

    @property
    def percent(self) -> float:
        counted = self.mutants - self.equivalent
        return 100.0 * (self.killed + self.caught_by_mypy) / counted if counted else 100.0

    @property
    def tests_percent(self) -> float:
        """The tests' own share: of the mutants mypy let through, those a test failed on."""
        counted = self.mutants - self.equivalent - self.caught_by_mypy
        return 100.0 * self.killed / counted if counted else 100.0

    def add(self, other: Score) -> None:
        self.mutants += other.mutants
        self.killed += other.killed
        self.caught_by_mypy += other.caught_by_mypy
        self.equivalent += other.equivalent
        self.survivors += other.survivors
        self.listed |= other.listed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="reuse the last run's verdicts")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--fail-under", type=float, default=90.0, help="per-module minimum, %%")
    args = parser.parse_args(argv)

    started = time.monotonic()
    run_mutmut(keep=args.keep, max_children=args.max_children)
    elapsed = time.monotonic() - started
    equivalents = listed_equivalents()
    scores = scores_by_module(equivalents)
    print_scores(scores, elapsed)
    stale = sorted(equivalents - set().union(*(score.listed for score in scores.values())))
    if stale:
        print(f"\n{EQUIVALENTS_PAGE.name} lists mutants that are gone or now killed (refresh it):")
        print("\n".join(f"  {name}" for name in stale))
    weak = [module for module, score in scores.items() if score.percent < args.fail_under]
    return 1 if weak or stale else 0


def run_mutmut(*, keep: bool, max_children: int) -> None:
    """``mutmut run`` from the checkout's root, its output in mutants/mutmut.log."""
    if not keep:
        shutil.rmtree(MUTANTS, ignore_errors=True)
    SCRATCH.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TMPDIR": str(SCRATCH)}
    # The tests must import the mutated copy in mutants/, never the checkout itself.
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    log = MUTANTS / "mutmut.log"
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)]
    print(f"mutmut run: {len(mutated_modules())} modules, output in {log.relative_to(ROOT)}")
    with log.open("w", encoding="utf-8") as out:
        finished = subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=out, check=False)  # noqa: S603
    stop_left_over_servers()
    if finished.returncode != 0:
        sys.exit(f"mutmut failed ({finished.returncode}): see {log}")


def stop_left_over_servers() -> None:
    """Stop the redis-servers working in SCRATCH: this run's, and only those. (redis-server
    rewrites its command line, but works in its ``--dir``.)"""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            program = (proc / "comm").read_text(encoding="utf-8").strip()
            workdir = (proc / "cwd").resolve()
        except OSError:
            continue
        if program == "redis-server" and workdir.is_relative_to(SCRATCH):
            os.kill(int(proc.name), signal.SIGTERM)


def mutated_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return list(config["tool"]["mutmut"]["only_mutate"])


def listed_equivalents() -> set[str]:
    lines = EQUIVALENTS_PAGE.read_text(encoding="utf-8").splitlines()
    return {match[1] for line in lines if (match := EQUIVALENT_ROW.match(line))}


def scores_by_module(equivalents: set[str]) -> dict[str, Score]:
    """Each mutated module's verdicts, from the .meta file mutmut writes beside its copy."""
    scores: dict[str, Score] = {}
    for module in mutated_modules():
        verdicts = json.loads((MUTANTS / f"{module}.meta").read_text(encoding="utf-8"))
        score = Score()
        for name, code in verdicts["exit_code_by_key"].items():
            score.mutants += 1
            if code in KILLED_BY_TESTS or code in TIMED_OUT:
                score.killed += 1
            elif code in CAUGHT_BY_MYPY:
                score.caught_by_mypy += 1
            elif name in equivalents:
                score.equivalent += 1
                score.listed.add(name)
            else:
                score.survivors.append(name)
        scores[module] = score
    return scores


def print_scores(scores: dict[str, Score], elapsed_s: float) -> None:
    rows = [("module", "mutants", "killed", "mypy", "equivalent", "survived", "score", "tests")]
    total = Score()
    for score in scores.values():
        total.add(score)
    for module, score in [*scores.items(), ("overall", total)]:
        rows.append(
            (
                module,
                str(score.mutants),
                str(score.killed),
                str(score.caught_by_mypy),
                str(score.equivalent),
                str(len(score.survivors)),
                f"{score.percent:.1f} %",
                f"{score.tests_percent:.1f} %",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print()
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(
        "\nscore: (killed + mypy) / (mutants - equivalent); "
        "tests: killed / (mutants - equivalent - mypy)"
    )
    print(f"run took {elapsed_s / 60:.1f} min")
    if total.survivors:
        print("\nsurvivors (`mutmut show NAME` from the checkout's root shows each change):")
        print("\n".join(f"  {name}" for name in total.survivors))


if __name__ == "__main__":
    sys.exit(main())
