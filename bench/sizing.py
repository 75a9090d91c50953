"""Sizing a deployment: N Redis Cluster primaries, M accounts, H worker hosts; which resource
runs out first, and what carrying the demand would take. A model, not a run: its costs are the
per-send figures measured in docs/performance.md, each a flag.

    .venv/bin/python bench/sizing.py --primaries 3 --accounts 200 --hosts 4 --cores 8

- The Gateway: an account (one API key) sends at most its per-second limit times the share the
  limiter turns into calls (99 %); with every account holding a backlog that is the demand, and
  ``--rate`` sets a lower total shared evenly.
- A primary: Redis runs commands on one core, and a send costs it ``--redis-us`` of CPU (230 µs,
  ten accounts, docs/performance.md; 1.47 times that with ``--min-replicas``, as the Sentinel
  runs measured: 751 against 511 µs). Each account's keys live in the slot of its hash tag, so
  the primary serving the most demand fills first: accounts are placed by CRC16 as Cluster
  does, over slots split in equal ranges (what ``redis-cli --cluster create`` assigns).
- A worker host: a worker process runs Python on one core at a time, a send costing it
  ``--worker-us`` (776 µs, ten accounts), and keeps at most ``--threads`` calls in flight, each
  waiting ``--latency-s`` on the Gateway; a host runs one process per core.
- A core counts as full at ``--headroom`` of its time (70 %): the rest is for catching up after
  a failover or an outage.
The measured costs come from a 2-core machine where Redis, the workers and the sandbox share
the cores, and the Redis figure includes the broker's share (on Cluster the broker is another
server), so the model errs on the side of more hardware.
"""

from __future__ import annotations

import argparse
import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

# The share of an account's limit the limiter turns into calls (bench/utilisation.py: 99.0-99.5 %
# at 20, 80 and 400/s: a 3 ms margin over the Gateway's second, each call placed where it arrived).
LIMITER_MARGIN = 0.99
# REDIS_MIN_REPLICAS=1 multiplies a primary's CPU a send by this (the Sentinel runs' 751 / 511).
MIN_REPLICAS_COST = 751 / 511
# The most primaries ``needed`` tries (a Redis Cluster's practical limit is about this).
MAX_PRIMARIES = 1000


@dataclass(frozen=True)
class Costs:
    """What one send costs, and how full a core may run."""

    redis_us: float = 230.0
    worker_us: float = 776.0
    threads: int = 100
    latency_s: float = 0.3
    headroom: float = 0.7
    min_replicas: bool = False

    @property
    def primary_sends_per_s(self) -> float:
        """Sends a second one primary carries at the headroom."""
        per_send = self.redis_us * (MIN_REPLICAS_COST if self.min_replicas else 1.0)
        return self.headroom * 1e6 / per_send

    @property
    def process_sends_per_s(self) -> float:
        """Sends a second one worker process carries: its core, or its threads in flight."""
        return min(self.headroom * 1e6 / self.worker_us, self.threads / self.latency_s)


@dataclass(frozen=True)
class Deployment:
    primaries: int
    accounts: tuple[str, ...]
    hosts: int
    cores: int  # per host, one worker process each
    limit_per_s: float = 80.0  # the Gateway's per-key limit


@dataclass(frozen=True)
class Ceiling:
    """One resource: the total sends a second at which it is full."""

    resource: str
    sends_per_s: float


def slot_ranges(primaries: int) -> list[int]:
    """The last slot of each primary's range, as ``redis-cli --cluster create`` splits them:
    equal shares, each end rounded."""
    share = REDIS_CLUSTER_HASH_SLOTS / primaries
    ends = [round(share * (n + 1) - 1) for n in range(primaries)]
    ends[-1] = REDIS_CLUSTER_HASH_SLOTS - 1
    return ends


def primary_of(account: str, primaries: int) -> int:
    """The primary (by the order of its slots) serving an account's hash tag ``{account}``."""
    return bisect_left(slot_ranges(primaries), key_slot(f"{{{account}}}".encode()))


def accounts_per_primary(accounts: Sequence[str], primaries: int) -> list[int]:
    """How many accounts each primary serves, busiest first."""
    ends = slot_ranges(primaries)
    counts = Counter(bisect_left(ends, key_slot(f"{{{name}}}".encode())) for name in accounts)
    return sorted((counts.get(n, 0) for n in range(primaries)), reverse=True)


def ceilings(deployment: Deployment, costs: Costs) -> list[Ceiling]:
    """Each resource's ceiling, in total sends a second with every account sending alike."""
    d = deployment
    per_account = d.limit_per_s * LIMITER_MARGIN
    busiest = accounts_per_primary(d.accounts, d.primaries)[0]
    share = busiest / len(d.accounts)  # of the total that lands on the busiest primary
    return [
        Ceiling(
            f"the Gateway ({len(d.accounts)} keys at {per_account:.0f}/s)",
            len(d.accounts) * per_account,
        ),
        Ceiling(
            f"the busiest primary ({busiest} of {len(d.accounts)} accounts)",
            costs.primary_sends_per_s / share if share else math.inf,
        ),
        Ceiling(
            f"the worker hosts ({d.hosts} x {d.cores} processes)",
            d.hosts * d.cores * costs.process_sends_per_s,
        ),
    ]


def needed(deployment: Deployment, costs: Costs, rate: float) -> tuple[int | None, int]:
    """The fewest primaries (None: more than MAX_PRIMARIES) and worker hosts that carry
    ``rate`` sends a second."""
    accounts = deployment.accounts
    primaries = next(
        (
            n
            for n in range(1, MAX_PRIMARIES + 1)
            if rate * accounts_per_primary(accounts, n)[0] / len(accounts)
            <= costs.primary_sends_per_s
        ),
        None,
    )
    hosts = math.ceil(rate / (deployment.cores * costs.process_sends_per_s))
    return primaries, hosts


def report(deployment: Deployment, costs: Costs, rate: float | None) -> list[str]:
    """The lines printed: each resource's ceiling and load, the first to run out, and what
    carrying the demand takes."""
    found = ceilings(deployment, costs)
    gateway = found[0].sends_per_s
    demand = gateway if rate is None else min(rate, gateway)
    said = "every account at its limit" if rate is None or rate >= gateway else "--rate"
    lines = [
        (
            f"{deployment.primaries} primaries, {len(deployment.accounts)} accounts, "
            f"{deployment.hosts} worker hosts of {deployment.cores} cores"
        ),
        f"demand: {demand:,.0f} sends/s ({said})",
        "",
        f"{'resource':<48} {'full at sends/s':>16} {'load':>7}",
    ]
    lines += [
        f"{each.resource:<48} {each.sends_per_s:>16,.0f} {demand / each.sends_per_s:>7.0%}"
        for each in found
    ]
    first = min(found, key=lambda each: each.sends_per_s)
    lines += ["", f"runs out first: {first.resource}, at {first.sends_per_s:,.0f} sends/s"]
    primaries, hosts = needed(deployment, costs, demand)
    more = f"{primaries}" if primaries is not None else f"more than {MAX_PRIMARIES}"
    lines.append(f"to carry {demand:,.0f} sends/s: {more} primaries, {hosts} worker hosts")
    return lines


def positive(text: str) -> int:
    """A count the model divides by: a whole number above 0."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number above 0, not {text!r}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--primaries", type=positive, default=3)
    parser.add_argument("--accounts", type=positive, default=10, help="accounts (Gateway API keys)")
    parser.add_argument("--hosts", type=positive, default=2, help="worker hosts")
    parser.add_argument("--cores", type=positive, default=2, help="cores per worker host")
    parser.add_argument("--rate", type=float, help="total sends/s wanted (default: every limit)")
    parser.add_argument("--limit-per-s", type=float, default=80.0, help="the Gateway's per key")
    defaults = Costs()
    parser.add_argument("--redis-us", type=float, default=defaults.redis_us)
    parser.add_argument("--worker-us", type=float, default=defaults.worker_us)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--latency-s", type=float, default=defaults.latency_s)
    parser.add_argument("--headroom", type=float, default=defaults.headroom)
    parser.add_argument("--min-replicas", action="store_true", help="REDIS_MIN_REPLICAS >= 1")
    args = parser.parse_args()
    deployment = Deployment(
        primaries=args.primaries,
        accounts=tuple(f"account-{n}" for n in range(1, args.accounts + 1)),
        hosts=args.hosts,
        cores=args.cores,
        limit_per_s=args.limit_per_s,
    )
    costs = Costs(
        redis_us=args.redis_us,
        worker_us=args.worker_us,
        threads=args.threads,
        latency_s=args.latency_s,
        headroom=args.headroom,
        min_replicas=args.min_replicas,
    )
    print("\n".join(report(deployment, costs, args.rate)))


if __name__ == "__main__":
    main()
