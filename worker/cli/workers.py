"""``msgworker workers``: each worker command that beat recently, with its host, pid, pool,
threads, last heartbeat and the jobs it sent in the last minute."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict

from worker.cli.console import Output, emit
from worker.cli.exits import EXIT_OK
from worker.observe.workers import list_workers
from worker.service.runtime import Runtime


def workers(args: argparse.Namespace, runtime: Runtime) -> int:
    now = time.time()
    found = list_workers(runtime.redis, runtime.keys)
    if args.json:
        emit({"workers": [{**asdict(w), "alive": w.alive(now)} for w in found]})
        return EXIT_OK
    out = Output()
    if not found:
        out.say("no worker has beaten in the last hours: start one with `msgworker worker`")
        return EXIT_OK
    rows = [
        (
            w.name,
            w.host,
            w.pid,
            w.pool,
            w.concurrency,
            f"{max(0, int(now - w.last_beat))} s ago",
            "alive" if w.alive(now) else "gone",
            w.sent_last_minute,
        )
        for w in found
    ]
    columns = ["name", "host", "pid", "pool", "threads", "last beat", "", "sent (1 min)"]
    out.table(columns, rows)
    return EXIT_OK
