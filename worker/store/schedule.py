"""Durable delays: jobs wait in Redis (``Keys.due``), never in a worker's memory or the broker.

The pump moves due jobs to the broker a batch at a time and keeps the broker shallow, so the
broker's visibility timeout never meets a delayed job. A dispatched job holds a lease
(``Keys.leases``) until a worker settles it; a dispatch that gets lost comes back by itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import redis

from worker.logs import get_logger
from worker.store.keys import Keys
from worker.store.scripts import load_script

log = get_logger(__name__)

Dispatch = Callable[[Sequence[tuple[str, int]]], None]

# How long a dispatched job may sit unsettled before it is dispatched again. Deliveries defer
# long waits to the schedule and the broker is kept shallow, so a live dispatch is taken within
# seconds; a dispatch stranded by a killed worker (taken from the broker, never started) comes
# back after this long. A second dispatch of a live job is harmless: it is dropped as stale/busy.
DISPATCH_LEASE_S = 30.0


def parse_member(member: str) -> tuple[str, int]:
    """``id|gen`` → (id, gen)."""
    job_id, _, gen = member.rpartition("|")
    return job_id, int(gen)


class Pump:
    """Promotes due jobs to the broker, at most ``max_depth`` waiting there at a time."""

    def __init__(  # noqa: PLR0913 - knobs with sensible defaults
        self,
        client: redis.Redis,
        keys: Keys,
        dispatch: Dispatch,
        broker_depth: Callable[[], int],
        *,
        max_depth: int = 1000,
        batch: int = 500,
        lease_s: float = DISPATCH_LEASE_S,
        idle_s: float = 0.05,
        depth_refresh_s: float = 1.0,
        chore: Callable[[], object] | None = None,
        chore_interval_s: float = 1.0,
    ) -> None:
        self._keys = keys
        self._dispatch = dispatch
        self._broker_depth = broker_depth
        self._max_depth = max_depth
        self._batch = batch
        self._lease_s = lease_s
        self._idle_s = idle_s
        # Asking the broker its queue length costs more than a dispatch: ask once a second and
        # count what was dispatched since.
        self._depth_refresh_s = depth_refresh_s
        self._depth = 0
        self._depth_read_at = float("-inf")
        self._promote = load_script(client, "promote")
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
        members = self._promote(args=[self._keys.prefix, now, room, self._lease_s])
        if members:
            self._dispatch([parse_member(str(m)) for m in members])
            self._depth += len(members)
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
