"""Failover: tests/system/test_sentinel_failover.py's scenario at full size, with its figures.

    .venv/bin/python bench/failover.py [--jobs 1000] [--kills 3] [--rate 40]

Starts a Sentinel group (a primary, two replicas, three sentinels), two workers sending at the
account's limit with REDIS_MIN_REPLICAS=1, and SIGKILLs the primary ``--kills`` times through
the run, each time bringing it back as a replica. Prints one JSON line: how long each failover
took (the kill until every sentinel named the new primary), the gap in sending it caused (the
last accepted send before the kill to the first after), the claims in flight at each kill, and
the invariants (lost, duplicated, stuck). Exits 1 when a job was lost or left stuck.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import chaos, failover  # noqa: E402 - after the path is set
from tests.support.sentinel import SentinelGroup  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--rate", type=int, default=40, help="the account's limit (sends/s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        group = SentinelGroup(Path(folder) / "sentinel")
        group.start()
        try:
            with chaos.staged(group.url, Path(folder)) as stage:
                result = failover.under_load(
                    stage, group, jobs=args.jobs, kills=args.kills, rate_per_sec=args.rate
                )
        finally:
            group.stop()
    report = result.report
    print(json.dumps(result.summary()))
    return 1 if report.lost or report.pending else 0


if __name__ == "__main__":
    sys.exit(main())
