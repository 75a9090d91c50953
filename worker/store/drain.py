"""Draining the dead-letter queue after a fix: paced, a slice at a time, stoppable between slices.

Each slice moves up to ``rate * slice`` records back to the schedule (one atomic step per record:
scheduled and out of the DLQ together), spread over the slice at the rate. Stopping leaves the
rest in the DLQ, so running the same replay again continues where it stopped. The CLI's
``dlq replay`` and the web console's replay both go through here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from worker.store.deadletters import DeadLetters, ReplayReport

SLICE_S = 0.5


def replay_rate(requested: float | None, ceiling: float) -> float:
    """The pace of a replay: as asked, else half the account's limit; never above the limit,
    since replays share it with live traffic."""
    return min(requested or ceiling / 2, ceiling)


def drain(
    dead_letters: DeadLetters,
    ids: Sequence[str],
    *,
    rate_per_s: float,
    on_progress: Callable[[ReplayReport], None] = lambda _report: None,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayReport:
    """Replay ``ids`` at ``rate_per_s``; returns what was done (all of it unless stopped)."""
    per_slice = max(1, round(rate_per_s * SLICE_S))
    report = ReplayReport()
    started = clock()
    for start in range(0, len(ids), per_slice):
        if should_stop():
            break
        report += dead_letters.replay(
            ids[start : start + per_slice], rate_per_s=rate_per_s, now=clock()
        )
        on_progress(report)
        # The next slice starts when the replayed ones are due: the pace is the send rate.
        pause = started + report.replayed / rate_per_s - clock()
        if pause > 0 and start + per_slice < len(ids):
            sleep(pause)
    return report
