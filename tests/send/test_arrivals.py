"""Where a process's calls reach the Gateway, against their slots, and the margin it keeps."""

from __future__ import annotations

import pytest

from tests.support.clock import Clock
from worker.send.arrivals import (
    MARGIN_MS,
    MAX_MS,
    MIN_SAMPLES,
    REFUSED_MS,
    REFUSED_S,
    SAMPLES,
    UPDATE_EVERY,
    Arrivals,
)
from worker.store.ratelimit import SEC_MARGIN_START_MS


def test_a_call_arrives_after_its_slot_by_its_time_to_send_and_its_round_trips_excess():
    """Sent 2 ms late, as quick as the quickest: 2 ms. Sent 0.5 ms late, answered 10 ms slower
    than the quickest (it queued on the way): 11 ms (10.5, rounded up)."""
    arrivals = Arrivals()
    assert arrivals.arrival_ms(0.002, 0.001, accepted=True) == 2
    assert arrivals.arrival_ms(0.0005, 0.0110, accepted=True) == 11


def test_a_call_quicker_than_any_before_sets_the_quickest_at_once():
    """The quickest round trip is this call's own when none before was quicker: no excess."""
    arrivals = Arrivals()
    arrivals.arrival_ms(0.0, 0.005, accepted=True)
    assert arrivals.arrival_ms(0.003, 0.001, accepted=True) == 3


def test_the_quickest_round_trip_is_the_recent_calls_own():
    """A quick call long gone stops counting: once SAMPLES slower calls came after it, their
    quickest is the base, and a call as slow as they are arrived when it was sent."""
    arrivals = Arrivals()
    arrivals.arrival_ms(0.0, 0.001, accepted=True)
    for _ in range(SAMPLES + UPDATE_EVERY):
        arrivals.arrival_ms(0.0, 0.020, accepted=True)
    assert arrivals.arrival_ms(0.004, 0.020, accepted=True) == 4


def test_a_refusal_answered_sooner_than_any_send_does_not_make_sends_look_late():
    """A 2 ms refusal among 10 ms sends: the sends' quickest stays 10 ms, and a refusal reckons
    from it too. Before any call was accepted, a call's own round trip is the base."""
    arrivals = Arrivals()
    assert arrivals.arrival_ms(0.001, 0.004, accepted=False) == 1
    arrivals.arrival_ms(0.0, 0.010, accepted=True)
    assert arrivals.arrival_ms(0.0, 0.002, accepted=False) == 0
    assert arrivals.arrival_ms(0.001, 0.010, accepted=True) == 1


def test_the_margin_starts_wide_and_narrows_once_calls_are_measured():
    arrivals = Arrivals()
    assert arrivals.ms == SEC_MARGIN_START_MS
    for _ in range(MIN_SAMPLES - 1):
        arrivals.arrival_ms(0.0, 0.001, accepted=True)
    assert arrivals.ms == SEC_MARGIN_START_MS
    for _ in range(UPDATE_EVERY):
        arrivals.arrival_ms(0.0, 0.001, accepted=True)
    assert arrivals.ms == MARGIN_MS


def test_each_429_widens_the_margin_for_a_while():
    """Two 429s: 20 ms wider; a minute after the last, narrow again (at the next update)."""
    clock = Clock(1000.0)
    arrivals = Arrivals(clock)
    for _ in range(MIN_SAMPLES):
        arrivals.arrival_ms(0.0, 0.001, accepted=True)
    arrivals.refused()
    clock.now += 1
    arrivals.refused()
    assert arrivals.ms == MARGIN_MS + 2 * REFUSED_MS
    clock.now += REFUSED_S - 0.5
    for _ in range(UPDATE_EVERY):
        arrivals.arrival_ms(0.0, 0.001, accepted=True)
    assert arrivals.ms == MARGIN_MS + REFUSED_MS
    clock.now += 1
    for _ in range(UPDATE_EVERY):
        arrivals.arrival_ms(0.0, 0.001, accepted=True)
    assert arrivals.ms == MARGIN_MS


def test_the_margin_never_passes_its_maximum():
    arrivals = Arrivals(Clock(0.0))
    for _ in range(2 * MAX_MS // REFUSED_MS):
        arrivals.refused()
    assert arrivals.ms == MAX_MS


@pytest.mark.parametrize("sent_s", [0.0, -0.0004])
def test_an_arrival_is_never_before_its_slot(sent_s):
    """A call can only be reckoned at or after its slot (a clock read a hair early is 0)."""
    assert Arrivals().arrival_ms(sent_s, 0.001, accepted=True) == 0
