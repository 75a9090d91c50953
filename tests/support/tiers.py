"""The three tiers of the suite, and the check that a test stays inside its own.

- ``unit``: pure logic in this process: no Redis, no child process (sockets to a server on a
  thread of this process, such as the in-process sandbox, are fine).
- ``redis``: a real private redis-server, and no other process.
- ``processes``: real child processes: celery workers, the ``msgworker`` command, the tools.

A test's tier follows from what it uses: a fixture that starts processes, or a module marked
``e2e``, ``chaos`` or ``alerting``, makes it ``processes``; the Redis fixtures make it ``redis``;
anything else is ``unit``. A ``redis`` or ``processes`` marker raises a test's tier, never lowers
it. While a test runs, every process it starts is seen (Python's audit hooks), so a test that
starts more than its tier allows fails with the marker to add, instead of slowing the fast tier.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TIERS = ("unit", "redis", "processes")
# These markers select kinds of process tests; each one puts a test in the processes tier.
PROCESS_MARKERS = frozenset({"processes", "e2e", "chaos", "alerting"})
# Fixtures that start processes (a test requesting one, even indirectly, is in that tier).
PROCESS_FIXTURES = frozenset({"workers", "rabbit_vhost"})
# Every Redis fixture rests on the session's redis-server, or is a test's own.
REDIS_FIXTURES = frozenset({"redis_server", "own_redis"})
# The only program a redis test may start: the private Redis (a test may run its own).
REDIS_PROGRAMS = frozenset({"redis-server"})
# The audit events of starting a program or forking this one.
SPAWN_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.posix_spawn",
        "os.spawn",
        "os.exec",
        "os.system",
        "os.fork",
        "os.forkpty",
    }
)


def tier_of(markers: Iterable[str], fixtures: Iterable[str]) -> str:
    """The tier of a test with these marker names, requesting (even indirectly) these fixtures."""
    markers, fixtures = set(markers), set(fixtures)
    found = "unit"
    if fixtures & REDIS_FIXTURES or "redis" in markers:
        found = "redis"
    if fixtures & PROCESS_FIXTURES or markers & PROCESS_MARKERS:
        found = "processes"
    return found


def program(event: str, args: tuple[Any, ...]) -> str:
    """The name of the program an audit event starts (``fork`` when this process forks)."""
    if event in {"os.fork", "os.forkpty"}:
        return "fork"
    if event == "os.system":
        return _name(str(args[0]).split() or ["sh"])
    # subprocess.Popen, os.posix_spawn, os.exec: (path, argv, ...); os.spawn: (mode, path, argv, ...)
    path, argv = (args[1], args[2]) if event == "os.spawn" else (args[0], args[1])
    if isinstance(argv, str | bytes):
        argv = argv.split()
    return _name(argv or [path])


def _name(argv: Any) -> str:
    first = argv[0]
    return Path(first.decode() if isinstance(first, bytes) else str(first)).name


def overstep(tier: str, programs: Iterable[str]) -> list[str]:
    """The programs started that the tier does not allow."""
    if tier == "processes":
        return []
    allowed = REDIS_PROGRAMS if tier == "redis" else frozenset()
    return sorted({name for name in programs if name not in allowed})


class SpawnWatch:
    """Records the programs started while it is on (one audit hook for the whole session)."""

    def __init__(self) -> None:
        self.started: list[str] | None = None
        sys.addaudithook(self._audit)

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        if self.started is not None and event in SPAWN_EVENTS:
            self.started.append(program(event, args))

    def start(self) -> None:
        self.started = []

    def stop(self) -> list[str]:
        started, self.started = self.started or [], None
        return started
