"""Scripts: Redis CPU per call of the send path's Lua scripts, this tree's against a git revision's.

Each round writes jobs into a private redis-server and runs, for the Lua sources of each side:
``begin_job.lua`` once per job (the first dispatch of a group), then ``sent.lua`` settling a
send and beginning the next job of the group in the same call (the chained form a grouped
dispatch takes). The clock passed to the scripts advances 10 ms a job, so every begin gets its
slot at once (the verdict is ``go``), as at a steady 100 sends/s. Per call it prints Redis CPU
(``used_cpu_user`` + ``used_cpu_sys`` deltas; noisy at this scale) and the time Redis spent in
the EVALSHA (``INFO commandstats``: the script and the commands it ran), and the commands one
call runs. A third pair times the script chunk alone (the included key builders, limiter,
delivery, begin and settlement functions, then ``return 1``): what every call pays before its
first line.

The revision ``--against`` names must take the send path's KEYS and ARGV as this tree does
(both sides are called by this tree's Python): 74b6d26 or later.

    .venv/bin/python bench/scripts.py [--against HEAD] [--jobs 2000] [--rounds 3]
                                      [--floor]   (this tree against its floor, see common.py:
                                                   the scripts' floor argument set)
                                      [--unpaced] (this tree against itself with pair pacing
                                                   off: what pacing costs a send)
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from common import (
    PAYLOAD,
    ROOT,
    Row,
    base_parser,
    bench_main,
    distinct,
    floor_row,
    print_table,
)

from worker.bounds import MIN_LIMIT_MAX, SEC_LIMIT_MAX
from worker.dev.localredis import LocalRedis
from worker.outcome import RateLimitHeaders
from worker.store import scripts
from worker.store.claims import Address, Execution, Opening
from worker.store.jobs import JobStore
from worker.store.keys import Keys
from worker.store.protocol import SENT
from worker.store.ratelimit import RateLimit
from worker.store.records import NewJob
from worker.store.transitions import Transitions

# Paced by recipient as by default (each job to a recipient of its own: every begin a new pair).
RATE = RateLimit(SEC_LIMIT_MAX, MIN_LIMIT_MAX, pair_interval_s=6.0)
UNPACED = RateLimit(SEC_LIMIT_MAX, MIN_LIMIT_MAX)
HEADERS = RateLimitHeaders(SEC_LIMIT_MAX, SEC_LIMIT_MAX - 1, MIN_LIMIT_MAX, MIN_LIMIT_MAX - 1)
STEP_S = 0.01


def revision_sources(revision: str, directory: Path) -> Path:
    """``revision``'s Lua sources, written into ``directory``."""
    folder = "worker/store/lua"
    names = subprocess.run(  # noqa: S603 - git, our arguments
        ["git", "ls-tree", "-r", "--name-only", f"{revision}:{folder}"],  # noqa: S607
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    directory.mkdir(parents=True)
    for name in names:
        source = subprocess.run(  # noqa: S603
            ["git", "show", f"{revision}:{folder}/{name}"],  # noqa: S607
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(source)
    # Shared parts this tree's declarations include and the revision had not: loaded with its
    # scripts (defined, never called), as the declarations list them.
    for part in scripts.LUA.joinpath("lib").iterdir():
        if not (directory / "lib" / part.name).exists():
            (directory / "lib" / part.name).write_text(part.read_text(encoding="utf-8"))
    return directory


@contextmanager
def lua_sources(folder: Path | None) -> Iterator[None]:
    """Scripts loaded inside read the Lua sources in ``folder`` (None: this tree's)."""
    saved = scripts.LUA
    scripts.LUA = folder or saved
    try:
        yield
    finally:
        scripts.LUA = saved


class Meter:
    """Redis CPU and EVALSHA time over a stretch of calls, from INFO."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.last: dict[str, tuple[float, float]] = {}

    def cpu_s(self) -> float:
        info = self.client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def measure(self, calls: int, run: Callable[[], None]) -> dict[str, float]:
        self.client.config_resetstat()
        before = self.cpu_s()
        run()
        cpu = self.cpu_s() - before
        stats: dict[str, Any] = self.client.info("commandstats")
        evalsha = stats.get("cmdstat_evalsha", {})
        commands = sum(
            int(s["calls"])
            for name, s in stats.items()
            if name not in ("cmdstat_evalsha", "cmdstat_info", "cmdstat_config", "cmdstat_script")
        )
        self.last = {
            name.removeprefix("cmdstat_"): (int(s["calls"]) / calls, float(s["usec"]) / calls)
            for name, s in stats.items()
            if name != "cmdstat_info"
        }
        return {
            "cpu_us": cpu * 1e6 / calls,
            "evalsha_us": float(evalsha.get("usec", 0)) / calls,
            "commands": commands / calls,
        }


@dataclass(frozen=True)
class Side:
    """What one side runs: the Lua sources in ``folder`` (None: this tree's), told to take their
    floor or not, with ``rate``'s limits and pacing."""

    label: str
    folder: Path | None = None
    floor: bool = False
    rate: RateLimit = RATE


def side(client: redis.Redis, prefix: str, how: Side, jobs: int, t0: float) -> dict[str, Any]:
    """One side's figures: begin_job, finish+begin, and the bare chunk, per call."""
    folder, floor = how.folder, how.floor
    # The jobs are written by this tree's enqueue (the send path's scripts are compared).
    store = JobStore(client, Keys(prefix))
    with lua_sources(folder):
        transitions = Transitions(client, Keys(prefix), retention_s=3600)
        transitions.floor = floor
        # sent.lua's shared parts as loaded, its own lines replaced by `return 1`.
        entry = scripts.LUA.joinpath(f"{SENT.name}.lua").read_text(encoding="utf-8")
        parts = scripts.script_source(SENT).removesuffix(entry)
        chunk = client.register_script(f"{parts}\nreturn 1")
    meter = Meter(client)
    ids = [f"job-{n}" for n in range(jobs)]
    store.add(
        [
            NewJob(
                id=i, account="acct", key=i, message=distinct(PAYLOAD), due_at=t0, expires_at=None
            )
            for i in ids
        ],
        now=t0,
    )
    holder = f"bench-{prefix}"

    def opening(n: int) -> Opening:
        return Opening(
            Execution(ids[n], 1, holder, Address("acct", ids[n], "normal")), 30, 30, how.rate
        )

    firsts = ids[::2]  # begin_job for every other job, finish+begin of the one after it

    def begins() -> None:
        for n in range(0, jobs, 2):
            claim = transitions.open(opening(n), now=t0 + n * STEP_S)
            if claim.verdict != "go":
                raise RuntimeError(f"begin_job: {claim.verdict}, not go")

    def finishes() -> None:
        for n in range(0, jobs, 2):
            sent = transitions.mark_sent(
                opening(n).execution,
                f"wamid.{prefix}{n}",
                now=t0 + (jobs + n + 1) * STEP_S,
                headers=HEADERS,
                then=opening(n + 1),
            )
            if sent.next is None or sent.next.verdict != "go":
                raise RuntimeError(f"finish+begin: {sent}, not go")

    def bare() -> None:
        for _ in range(len(firsts)):
            chunk()

    figures = {"begin_job": meter.measure(len(firsts), begins)}
    commands = {"begin_job": meter.last}
    figures["finish+begin"] = meter.measure(len(firsts), finishes)
    commands["finish+begin"] = meter.last
    figures["chunk only"] = meter.measure(len(firsts), bare)
    return {**figures, "commands": commands}


def run(args: argparse.Namespace) -> list[Row]:
    with tempfile.TemporaryDirectory() as directory:
        # The baseline first, then the side compared with it.
        sides = [Side("this tree")]
        if args.floor:
            sides.append(Side("floor", floor=True))
        elif args.unpaced:
            sides.insert(0, Side("unpaced", rate=UNPACED))
        else:
            at = revision_sources(args.against, Path(directory) / "at")
            sides.insert(0, Side(args.against, folder=at))
        server = LocalRedis(Path(directory))
        server.start()
        try:
            client = redis.Redis.from_url(server.url)
            results: dict[str, list[dict[str, Any]]] = {how.label: [] for how in sides}
            for r in range(args.rounds):
                t0 = time.time()
                for n, how in enumerate(sides[:: 1 if r % 2 == 0 else -1]):
                    # Each side on an empty server: a keyspace that grew costs every command.
                    client.flushall()
                    prefix = f"s{n}r{r}:"
                    results[how.label].append(side(client, prefix, how, args.jobs, t0))
        finally:
            server.stop()
    baseline, compared = sides[0].label, sides[1].label
    rows: list[Row] = []
    table = []
    for call in ("begin_job", "finish+begin", "chunk only"):
        for metric, unit in (("cpu_us", "µs CPU"), ("evalsha_us", "µs in EVALSHA")):
            base = min(r[call][metric] for r in results[baseline])
            new = min(r[call][metric] for r in results[compared])
            table.append([call, unit, f"{base:.1f}", f"{new:.1f}", f"{new / base:.2f}x"])
            row = Row(f"{call} {metric}", "µs/call", new, base, "lower", None, "bench/scripts.py")
            rows.append(floor_row(row) if args.floor else row)
        commands = [r[call]["commands"] for r in results[compared]]
        base_commands = [r[call]["commands"] for r in results[baseline]]
        table.append([call, "commands", f"{min(base_commands):.1f}", f"{min(commands):.1f}", ""])
    print(f"per call, best of {args.rounds} rounds of {args.jobs // 2} calls")
    print_table(["call", "per call", baseline, compared, "ratio"], table)
    for call, stats in results[compared][-1]["commands"].items():
        print(f"\n{call}, {compared}, last round: commands per call (µs each per call)")
        ranked = sorted(stats.items(), key=lambda item: -item[1][1])
        print_table(
            ["command", "calls", "µs"],
            [[name, f"{calls:.2f}", f"{usec:.1f}"] for name, (calls, usec) in ranked],
        )
    return rows


def main(argv: list[str] | None = None) -> list[Row]:
    parser = base_parser(__doc__)
    compared = parser.add_mutually_exclusive_group()
    compared.add_argument("--against", default="HEAD", help="git revision of the baseline's Lua")
    compared.add_argument(
        "--floor", action="store_true", help="this tree against its floor (no limiter, no records)"
    )
    compared.add_argument(
        "--unpaced", action="store_true", help="this tree against itself with pair pacing off"
    )
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per side and round")
    parser.add_argument("--rounds", type=int, default=3)
    return bench_main(parser, run, argv)


if __name__ == "__main__":
    main()
