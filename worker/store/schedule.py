"""Durable delays: jobs wait in Redis (``Keys.due``), never in a worker's memory or the broker.

Each account has a schedule lane per priority (high, normal, bulk). The pump dispatches, per
account, only what its rate limiter can take within a short horizon (``LOOKAHEAD_S``), high lane
first: an account's backlog waits in its lanes, not in the broker or in worker threads sleeping
for its slots, so another account's jobs and a ``high`` job are never queued behind it. When the
broker has less room than the accounts may send, they share it by weight (``shares.py``).

A dispatched job holds a lease (``Keys.leases``) until a worker settles it; a dispatch that gets
lost comes back by itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import redis

from worker.logs import get_logger
from worker.store.keys import LANES, Keys
from worker.store.protocol import PLAN, PROMOTE
from worker.store.ratelimit import RateLimit
from worker.store.scripts import load_script
from worker.store.shares import share_room

log = get_logger(__name__)

# One dispatch as the pump hands it on and its broker message carries it: the job's id, its
# generation and its address (account, idempotency key, priority; '' for a job gone or a field
# it lacks), so that a worker names the job's keys without reading its record first.
JobDispatch = tuple[str, int, str, str, str]
Dispatch = Callable[[Sequence[JobDispatch]], None]
T = TypeVar("T")

# How long a dispatched job may sit unsettled before it is dispatched again. Deliveries defer
# long waits to the schedule and the broker is kept shallow, so a live dispatch is taken within
# seconds; a dispatch stranded by a killed worker (taken from the broker, never started) comes
# back after this long. A second dispatch of a live job is harmless: it is dropped as stale/busy.
DISPATCH_LEASE_S = 30.0
# How far ahead the pump fills an account's rate-limit slots: what a job enqueued now may wait
# behind its account's backlog (or a high one behind bulk ones). Long enough to cover the
# pump's round (IDLE_S) and the trip through the broker, so no slot goes unused.
LOOKAHEAD_S = 0.25
# A dispatch not begun within this long stops counting against its account's budget (lost with
# a killed worker; its lease brings the job back later).
DISPATCH_COUNT_S = 5.0
IDLE_S = 0.05


def parse_member(member: str) -> tuple[str, int]:
    """``id|gen`` → (id, gen)."""
    job_id, _, gen = member.rpartition("|")
    return job_id, int(gen)


def scheduled_accounts(client: redis.Redis, keys: Keys) -> list[str]:
    """The accounts whose lanes may hold jobs, sorted."""
    return sorted(str(a) for a in client.smembers(keys.scheduled_accounts))


def lane_keys(client: redis.Redis, keys: Keys) -> list[str]:
    """Every lane of the schedule that may hold jobs."""
    return [keys.due(a, lane) for a in scheduled_accounts(client, keys) for lane in LANES]


def count_scheduled(client: redis.Redis, keys: Keys) -> int:
    """Jobs in the schedule, due or not, over every account's lanes."""
    pipe = client.pipeline(transaction=False)
    for key in lane_keys(client, keys):
        pipe.zcard(key)
    return sum(int(n) for n in pipe.execute())


def scheduled_by_account(client: redis.Redis, keys: Keys, now: float) -> dict[str, tuple[int, int]]:
    """(due by ``now``, due later) jobs in the schedule, by account, over its lanes."""
    accounts = scheduled_accounts(client, keys)
    pipe = client.pipeline(transaction=False)
    for account in accounts:
        for lane in LANES:
            pipe.zcount(keys.due(account, lane), "-inf", now)
            pipe.zcount(keys.due(account, lane), f"({now}", "+inf")
    counts = [int(n) for n in pipe.execute()]
    width = 2 * len(LANES)
    return {
        account: (
            sum(counts[i * width : (i + 1) * width : 2]),
            sum(counts[i * width + 1 : (i + 1) * width : 2]),
        )
        for i, account in enumerate(accounts)
    }


def in_slot_order(items: Sequence[T], runs: Sequence[int], paces: Sequence[float]) -> list[T]:
    """``items`` made of consecutive runs (``runs``: their lengths), ordered by the slot each may
    expect: the k-th of a run at its first slot plus k gaps (``paces``: first slot and gap, in
    ms, two per run). Equal slots keep the shorter run first, then the order given.

    The runs are the accounts' jobs, and the dispatcher deals the whole out, in turn, to groups
    that one worker thread delivers one job after the other, each at its account's pace. In slot
    order a group's jobs come due one after the other: an account with a job or two (a trickle of
    one-time codes) goes ahead of a backlog account whose jobs wait for their slots, and a
    backlog's jobs spread over several groups, so several threads take its slots in turn (one
    thread with all of them falls behind once a call and its settlement take longer than the gap
    between two slots: ten accounts at 80/s sent at 85 % of their limits).
    """
    keyed, start = [], 0
    for run, length in enumerate(runs):
        first, gap = paces[2 * run], paces[2 * run + 1]
        keyed += [(first + k * gap, length, start + k) for k in range(length)]
        start += length
    return [items[index] for _, _, index in sorted(keyed)]


class Pump:
    """Promotes due jobs to the broker, at most ``max_depth`` waiting there at a time, and per
    account at most what its limiter can take within ``lookahead_s``."""

    def __init__(  # noqa: PLR0913 - knobs with sensible defaults
        self,
        client: redis.Redis,
        keys: Keys,
        dispatch: Dispatch,
        broker_depth: Callable[[], int],
        *,
        rate: RateLimit | None = None,
        weights: Mapping[str, int] | None = None,
        max_depth: int = 1000,
        batch: int = 500,
        lease_s: float = DISPATCH_LEASE_S,
        lookahead_s: float = LOOKAHEAD_S,
        idle_s: float = IDLE_S,
        depth_refresh_s: float = 1.0,
        chore: Callable[[], object] | None = None,
        chore_interval_s: float = 1.0,
    ) -> None:
        self._keys = keys
        self._dispatch = dispatch
        self._broker_depth = broker_depth
        rate = rate or RateLimit()
        # The limits every plan and promote passes, as a begin does, but with the Gateway's own
        # second: the pump keeps the lookahead filled at the key's full rate, and the begins'
        # margin paces the calls (a pump planning with a wider second than the begins use
        # would let them run dry).
        self._limits = rate.limits(sec_margin_ms=0)
        self._weights = dict(weights or {})
        self._turn = 0
        self._max_depth = max_depth
        self._batch = batch
        self._lease_s = lease_s
        self._lookahead_s = lookahead_s
        self._idle_s = idle_s
        # Asking the broker its queue length costs more than a dispatch: ask once a second and
        # count what was dispatched since.
        self._depth_refresh_s = depth_refresh_s
        self._depth = 0
        self._depth_read_at = float("-inf")
        self._plan = load_script(client, PLAN)
        self._promote = load_script(client, PROMOTE)
        # Housekeeping done now and then beside the pumping (removing old dead letters).
        self._chore = chore
        self._chore_interval_s = chore_interval_s
        self._chore_done_at = float("-inf")

    def pump_once(self, now: float | None = None) -> int:
        """Dispatch what is due and fits in the broker; returns how many were dispatched."""
        now = time.time() if now is None else now
        if now - self._depth_read_at >= self._depth_refresh_s:
            self._depth, self._depth_read_at = self._broker_depth(), now
        room = min(self._batch, self._max_depth - self._depth)
        if room <= 0:
            return 0
        head = {"prefix": self._keys.prefix, "now": now, "horizon_s": self._lookahead_s}
        head.update(self._limits)
        plan = self._plan(args=PLAN.arguments(head))
        wanted = {str(a): int(n) for a, n in zip(plan[::2], plan[1::2], strict=True)}
        quotas = share_room(wanted, self._weights, room, turn=self._turn)
        self._turn += 1
        shares = [{"account": a, "quota": n} for a, n in quotas.items() if n > 0]
        tail = {"lease_s": self._lease_s, "count_s": DISPATCH_COUNT_S, "room": room}
        args = PROMOTE.arguments({**head, **tail}, each=shares)
        members, runs, paces, addresses = self._promote(args=args)
        if members:
            fields = [str(field) for field in addresses]
            dispatches: list[JobDispatch] = []
            for n, member in enumerate(members):
                job_id, gen = parse_member(str(member))
                account, key, priority = fields[3 * n : 3 * n + 3]
                dispatches.append((job_id, gen, account, key, priority))
            self._dispatch(
                in_slot_order(dispatches, [int(run) for run in runs], [float(p) for p in paces])
            )
            self._depth += len(dispatches)
        return len(members)

    def _housekeep(self) -> None:
        now = time.monotonic()
        if self._chore is not None and now - self._chore_done_at >= self._chore_interval_s:
            self._chore_done_at = now
            self._chore()

    def run(self, stop: threading.Event) -> None:
        """Pump until ``stop`` is set; a failing Redis or broker is logged and retried."""
        failures = 0
        while not stop.is_set():
            try:
                moved = self.pump_once()
                self._housekeep()
                failures = 0
            except Exception as exc:  # noqa: BLE001 - the pump must outlive any outage
                failures += 1
                log.warning("pump.failed", error=type(exc).__name__, failures=failures)
                stop.wait(min(5.0, 0.1 * 2**failures))
                continue
            if moved < self._batch:
                stop.wait(self._idle_s)
