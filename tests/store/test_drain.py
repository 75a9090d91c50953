"""Draining the DLQ against a real Redis: a slice at a time at the rate, in the order asked,
stoppable between slices, and continued by running the same drain again. The clock is the
test's: the pause between slices is asserted, never waited for."""

from __future__ import annotations

import time

import pytest

from tests.support.clock import Clock
from tests.support.messages import text
from worker.store.deadletters import DeadLetter, DeadLetters, ReplayReport, Selection
from worker.store.drain import drain, replay_rate
from worker.store.restore import Restore


@pytest.fixture
def dlq(runtime):
    return DeadLetters(runtime.redis, runtime.keys, retention_s=3600)


def fill(runtime, count):
    """``count`` dead letters, parked a second apart; their ids, oldest first."""
    start = time.time() - count
    letters = [
        DeadLetter(
            id=f"{n:032x}",
            idempotency_key=f"key-{n}",
            account="default",
            message=text(n),
            code="BILL_001",
            group=None,
            status=402,
            description="",
            params={},
            reason="billing",
            attempts=1,
            enqueued_at=start + n - 1,
            parked_at=start + n,
        )
        for n in range(count)
    ]
    Restore(runtime.redis, runtime.keys).put_back(letters)
    return [letter.id for letter in letters]


def paced(dlq, ids, rate_per_s, clock, **options):
    """Drain ``ids`` on ``clock``; the report and the replayed count after each slice."""
    progress: list[int] = []
    report = drain(
        dlq,
        ids,
        rate_per_s=rate_per_s,
        on_progress=lambda done: progress.append(done.replayed),
        clock=clock,
        sleep=clock.sleep,
        **options,
    )
    return report, progress


def test_a_drain_replays_a_slice_at_a_time_paced_at_the_rate(runtime, dlq):
    """25 records at 10/s: slices of 5 (half a second's worth), progress after each, a pause
    until the slice's jobs are due; the jobs come due 0.1 s apart in the order given."""
    ids = fill(runtime, 25)[::-1]  # any order the caller chooses, newest first here
    clock = Clock(time.time())
    start = clock.now
    report, progress = paced(dlq, ids, 10, clock)
    assert report == ReplayReport(replayed=25)
    assert progress == [5, 10, 15, 20, 25]
    assert clock.slept == pytest.approx([0.5] * 4)  # none after the last slice
    due = [runtime.jobs.get(job_id).due_at - start for job_id in ids]  # approx is relative
    assert due == pytest.approx([n * 0.1 for n in range(25)])
    assert list(dlq.select(Selection())) == []


def test_a_stopped_drain_leaves_the_rest_and_the_same_drain_again_finishes(runtime, dlq):
    """Stopped after two slices: ten replayed, fifteen still in the DLQ; the same drain run again
    replays the fifteen and counts the ten as gone."""
    ids = fill(runtime, 25)
    clock = Clock(time.time())

    def two_slices() -> bool:
        return len(clock.slept) == 2

    first, progress = paced(dlq, ids, 10, clock, should_stop=two_slices)
    assert (first, progress) == (ReplayReport(replayed=10), [5, 10])
    assert [record.id for record in dlq.select(Selection())] == ids[10:]
    second = drain(dlq, ids, rate_per_s=10, clock=clock, sleep=clock.sleep)
    assert second == ReplayReport(replayed=15, missing=10)
    assert dlq.counts() == {}


def test_a_slow_drain_replays_one_record_a_slice(runtime, dlq):
    """Below two a second a slice still holds one record, and the pause is the rate's."""
    ids = fill(runtime, 3)
    clock = Clock(time.time())
    report, progress = paced(dlq, ids, 0.5, clock)
    assert (report.replayed, progress) == (3, [1, 2, 3])
    assert clock.slept == pytest.approx([2.0, 2.0])


def test_a_drain_stopped_before_it_starts_replays_nothing(runtime, dlq):
    """Stopping is checked before each slice, the first included."""
    ids = fill(runtime, 3)
    assert drain(dlq, ids, rate_per_s=10, should_stop=lambda: True) == ReplayReport()
    assert len(list(dlq.select(Selection()))) == 3


@pytest.mark.parametrize(
    ("requested", "ceiling", "rate"),
    [(None, 80, 40), (10, 80, 10), (500, 80, 80), (0, 80, 40)],
)
def test_replay_rate_is_as_asked_else_half_the_limit_never_above_it(requested, ceiling, rate):
    """A replay shares the account's limit with live traffic: half of it unless asked, and never
    more than all of it."""
    assert replay_rate(requested, ceiling) == rate
