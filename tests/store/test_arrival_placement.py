"""A call's place in the limiter's window moves to where it reached the Gateway (settle.lua's
``arrived``), and a begin's margin is the one its worker keeps, on a real Redis."""

from __future__ import annotations

import pytest

from worker.outcome import Outcome
from worker.store.claims import Execution, Opening, Verdict
from worker.store.keys import Keys
from worker.store.ratelimit import GATEWAY_SEC_WINDOW_MS, SEC_WINDOW_MS, RateLimit
from worker.store.records import NewJob

KEYS = Keys("arrive:")
NOW = 1_800_000_000.0
BODY = {"to": "905321234567", "type": "text", "text": {"body": "hi"}}
RATE = RateLimit(per_sec=10, per_min=10_000, max_wait_s=3600)


@pytest.fixture
def store_keys():
    return KEYS


def begin_all(jobs, transitions, ids, *, margin_ms=None):
    """Each job begun at NOW (with the worker's margin when given); their slots (s)."""
    jobs.add([NewJob(i, "default", i, BODY, due_at=NOW) for i in ids], now=NOW)
    slots = []
    for i in ids:
        opening = Opening(Execution(i, 1, f"h-{i}"), 3600, 30, RATE)
        if margin_ms is not None:
            opening = Opening(opening.execution, 3600, 30, RATE, margin_ms)
        claim = transitions.open(opening, now=NOW)
        assert claim.verdict is Verdict.GO
        slots.append(claim.slot_at)
    return slots


def entry_of(redis_client, job_id):
    """The job's entry in the account's sec window, and its score (ms)."""
    entry = redis_client.hget(KEYS.job(job_id), "slot")
    return entry, redis_client.zscore(KEYS.window("default", "sec"), entry)


def test_a_late_call_holds_back_the_slot_a_window_after_it(jobs, redis_client, transitions):
    """Ten slots at 10/s, the first call settled as having arrived 30 ms after its slot: its
    entry moves 30 ms on, and the eleventh slot lies a window after that arrival, 30 ms later
    than a window after the slot."""
    ids = [f"j{n:02}" for n in range(11)]
    slots = begin_all(jobs, transitions, ids[:10])
    entry, score = entry_of(redis_client, "j00")
    transitions.mark_sent(Execution("j00", 1, "h-j00"), "wamid.late", now=NOW + 0.1, arrival_ms=30)
    assert entry_of(redis_client, "j00") == (entry, score + 30)
    (eleventh,) = begin_all(jobs, transitions, ids[10:])
    assert eleventh == pytest.approx(slots[0] + 0.030 + SEC_WINDOW_MS / 1000, abs=0.0015)


def test_every_settlement_after_a_call_places_it(jobs, redis_client, transitions):
    """A retry after a 502 and a park after a refusal place their calls as a send does."""
    begin_all(jobs, transitions, ["retried", "parked"])
    retried, parked = entry_of(redis_client, "retried"), entry_of(redis_client, "parked")
    transitions.retry(
        Execution("retried", 1, "h-retried"),
        now=NOW + 1,
        delay_s=2,
        action="backoff",
        outcome=Outcome("HTTP_502", status=502),
        arrival_ms=12,
    )
    transitions.park(
        Execution("parked", 1, "h-parked"),
        now=NOW + 1,
        code="GW_001",
        reason="permanent",
        record={},
        arrival_ms=5,
    )
    assert entry_of(redis_client, "retried")[1] == retried[1] + 12
    assert entry_of(redis_client, "parked")[1] == parked[1] + 5


def test_an_arrival_never_moves_an_entry_earlier_or_back_into_the_window(
    jobs, redis_client, transitions
):
    """A settlement sent again with an earlier arrival leaves the later place; an entry trimmed
    from the window (or given back) is not written back by a late settlement."""
    begin_all(jobs, transitions, ["again", "gone"])
    execution = Execution("again", 1, "h-again")
    _, score = entry_of(redis_client, "again")
    transitions.mark_sent(execution, "wamid.again", now=NOW + 1, arrival_ms=20)
    transitions.mark_sent(execution, "wamid.again", now=NOW + 1, arrival_ms=5)
    assert entry_of(redis_client, "again")[1] == score + 20
    gone, _ = entry_of(redis_client, "gone")
    redis_client.zrem(KEYS.window("default", "sec"), gone)
    transitions.mark_sent(Execution("gone", 1, "h-gone"), "wamid.gone", now=NOW + 1, arrival_ms=9)
    assert entry_of(redis_client, "gone")[1] is None


def test_a_begin_keeps_its_workers_margin(jobs, transitions):
    """With a 3 ms margin, slots at 10/s lie 100.3 ms apart and the eleventh a 1,003 ms window
    after the first; with the start margin, 104 ms and 1,040 ms."""
    ids = [f"m{n:02}" for n in range(11)]
    narrow = begin_all(jobs, transitions, ids, margin_ms=3)
    assert narrow[1] - narrow[0] == pytest.approx(0.1003, abs=0.0011)
    assert narrow[10] - narrow[0] == pytest.approx((GATEWAY_SEC_WINDOW_MS + 3) / 1000, abs=0.0011)
    wide = begin_all(jobs, transitions, [f"w{n:02}" for n in range(2)])
    assert wide[1] - wide[0] == pytest.approx(SEC_WINDOW_MS / 10_000, abs=0.0011)


def test_an_entry_of_a_fractional_slot_moves_too(jobs, redis_client, transitions):
    """At 80/s with a 3 ms margin slots lie 12.5375 ms apart: the second's entry names a slot
    with a fraction, and its arrival moves it all the same."""
    fast = RateLimit(per_sec=80, per_min=10_000, max_wait_s=3600)
    jobs.add([NewJob(i, "default", i, BODY, due_at=NOW) for i in ("f0", "f1")], now=NOW)
    for i in ("f0", "f1"):
        opening = Opening(Execution(i, 1, f"h-{i}"), 3600, 30, fast, 3)
        assert transitions.open(opening, now=NOW).verdict is Verdict.GO
    _, score = entry_of(redis_client, "f1")
    assert score % 1 != 0
    transitions.mark_sent(Execution("f1", 1, "h-f1"), "wamid.f1", now=NOW + 1, arrival_ms=5)
    assert entry_of(redis_client, "f1")[1] == pytest.approx(score + 5, abs=0.06)


def test_a_settlement_of_an_earlier_generation_moves_nothing(jobs, redis_client, transitions):
    """The job was dispatched again (generation 2) and begun: a settlement of generation 1, sent
    late, leaves generation 2's entry where it is."""
    begin_all(jobs, transitions, ["old"])
    redis_client.hset(KEYS.job("old"), "gen", 2)
    _, score = entry_of(redis_client, "old")
    transitions.mark_sent(Execution("old", 1, "h-old"), "wamid.old", now=NOW + 1, arrival_ms=40)
    assert entry_of(redis_client, "old")[1] == score


def test_an_arrival_is_never_placed_after_its_settlement(jobs, redis_client, transitions):
    """A clock stepped during the call reckons it 5 s late: settled 20 ms after its slot, its
    entry moves 20 ms, not 5 s (an entry in the future would hold the account back)."""
    begin_all(jobs, transitions, ["stepped"])
    _, score = entry_of(redis_client, "stepped")
    execution = Execution("stepped", 1, "h-stepped")
    transitions.mark_sent(execution, "wamid.stepped", now=NOW + 0.020, arrival_ms=5000)
    assert entry_of(redis_client, "stepped")[1] == score + 20


def test_a_moved_entry_does_not_spare_the_next_second_its_upkeep(jobs, redis_client, transitions):
    """The last entry moved on into the next second: the first slot of that second still trims
    the window and renews its expiry (told by the slot the entry was reserved for)."""
    begin_all(jobs, transitions, ["early"])
    transitions.mark_sent(
        Execution("early", 1, "h-early"), "wamid.early", now=NOW + 1.5, arrival_ms=1200
    )
    window = KEYS.window("default", "sec")
    redis_client.pexpire(window, 100_000)
    jobs.add([NewJob("next", "default", "next", BODY, due_at=NOW)], now=NOW)
    opening = Opening(Execution("next", 1, "h-next"), 3600, 30, RATE)
    assert transitions.open(opening, now=NOW + 1.5).verdict is Verdict.GO
    assert redis_client.pttl(window) <= SEC_WINDOW_MS + 2000
