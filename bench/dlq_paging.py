"""DLQ paging: how long the console's page N of a large dead-letter queue takes to read.

Fills a private redis-server with dead letters through the product's own import path (what
``msgworker dlq import`` writes: record, index by parked time, count by code), then times page 1
and page N as the console reads them (by rank in the index), and page N the way the console read
it before (reading every record before it), as the baseline of the same run.

    .venv/bin/python bench/dlq_paging.py [--letters 300000] [--page 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from tests.support.deadletters import dead_letter  # noqa: E402
from worker.dev.localredis import LocalRedis  # noqa: E402
from worker.http.console.pages import PAGE_SIZE  # noqa: E402
from worker.store.deadletters import DeadLetters, Selection, dead_letter_page  # noqa: E402
from worker.store.keys import Keys  # noqa: E402
from worker.store.restore import Restore  # noqa: E402

KEYS = Keys()
BUDGET_MS = 200.0
OUTAGE_PER_S = 80  # a BILL_001 outage parks 80 a second


def fill(client: redis.Redis, letters: int) -> None:
    restore = Restore(client, KEYS)
    chunk = 5_000
    for start in range(0, letters, chunk):
        restore.put_back(
            [dead_letter(n, per_s=OUTAGE_PER_S) for n in range(start, min(letters, start + chunk))]
        )


def median_ms(read: Callable[[], int], rounds: int, expected: int) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        got = read()
        times.append((time.perf_counter() - began) * 1000)
        if got != expected:
            raise SystemExit(f"read {got} records, expected {expected}")
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=300_000)
    parser.add_argument("--page", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    start = (args.page - 1) * PAGE_SIZE
    if start + PAGE_SIZE > args.letters:
        parser.error("--page is past the last letter")
    with tempfile.TemporaryDirectory() as folder:
        server = LocalRedis(Path(folder))
        server.start()
        try:
            client = redis.Redis.from_url(server.url, decode_responses=True)
            began = time.perf_counter()
            fill(client, args.letters)
            print(
                f"filled {client.zcard(KEYS.dead_letter_index):,} dead letters "
                f"in {time.perf_counter() - began:.1f} s"
            )

            def by_rank(rank: int) -> Callable[[], int]:
                return lambda: len(
                    dead_letter_page(client, KEYS, start_rank=rank, size=PAGE_SIZE).records
                )

            def from_the_start() -> int:
                dead = DeadLetters(client, KEYS, retention_s=60)
                return len(list(islice(dead.select(Selection()), start, start + PAGE_SIZE)))

            first = median_ms(by_rank(0), args.rounds, PAGE_SIZE)
            nth = median_ms(by_rank(start), args.rounds, PAGE_SIZE)
            old = median_ms(from_the_start, max(1, args.rounds // 2), PAGE_SIZE)
            client.close()
        finally:
            server.stop()
    print(f"page 1 by rank                  {first:8.1f} ms")
    print(f"page {args.page:,} by rank              {nth:8.1f} ms  ({nth / first:.2f}x page 1)")
    print(f"page {args.page:,} reading from start   {old:8.1f} ms  ({old / nth:.0f}x by rank)")
    verdict = "within" if nth < BUDGET_MS else "OVER"
    print(f"page {args.page:,}: {verdict} the {BUDGET_MS:.0f} ms budget")
    return 0 if nth < BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
