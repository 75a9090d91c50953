"""The cluster-wide limiter on a real Redis: slots in order, both windows, cooldowns, learning."""

from __future__ import annotations

import time

import pytest

from worker.errors import ClaimLost
from worker.jobs import Execution, JobStore, NewJob
from worker.keys import Keys
from worker.outcome import RateLimitHeaders
from worker.ratelimit import MIN_WINDOW_MS, SEC_WINDOW_MS, Limits, RateLimiter

KEYS = Keys("rl:")
NOW = 1_800_000_000.0
BODY = {"to": "905321234567", "type": "text", "text": {"body": "hi"}}


@pytest.fixture
def claimed(redis_client):
    """Make n claimed executions, as deliveries hold them when they ask for a slot."""
    jobs = JobStore(redis_client, KEYS)

    def make(n: int) -> list[Execution]:
        new = [NewJob(f"j{i}", "default", f"j{i}", BODY, due_at=NOW) for i in range(n)]
        jobs.add(new, now=NOW)
        executions = [Execution(f"j{i}", 1, f"h{i}") for i in range(n)]
        for execution in executions:
            jobs.begin(execution, now=NOW, lease_s=3600, probe_interval_s=30)
        return executions

    return make


def reserve_all(limiter, executions, *, max_wait_s=3600.0, now_s=NOW):
    return [
        limiter.acquire("default", e, lease_s=30, max_wait_s=max_wait_s, now_s=now_s)
        for e in executions
    ]


def slot_times(grants, now_s=NOW):
    return [now_s + g.wait_s for g in grants]


def test_slots_are_in_order_and_no_window_holds_more_than_the_limit(redis_client, claimed):
    """200 asks at once under 10/s: slots ascend, and every second-window holds at most 10."""
    limiter = RateLimiter(redis_client, KEYS, Limits(per_sec=10, per_min=10_000))
    grants = reserve_all(limiter, claimed(200))
    assert all(g.reserved for g in grants)
    slots = slot_times(grants)
    assert slots == sorted(slots)
    window = SEC_WINDOW_MS / 1000
    for i, start in enumerate(slots):
        assert sum(1 for s in slots[i:] if s < start + window) <= 10
    # The limit is used fully: 200 slots take 20 windows, not more.
    assert slots[-1] - slots[0] == pytest.approx(19 * window, abs=0.01)


def test_the_minute_window_binds_when_it_is_the_tighter(redis_client, claimed):
    """With 100/s but 20/min, the 21st slot waits for the first to leave the minute window."""
    limiter = RateLimiter(redis_client, KEYS, Limits(per_sec=100, per_min=20))
    slots = slot_times(reserve_all(limiter, claimed(21)))
    assert slots[19] - slots[0] < 1
    assert slots[20] - slots[0] == pytest.approx(MIN_WINDOW_MS / 1000, abs=0.01)


def test_a_long_wait_reserves_nothing(redis_client, claimed):
    """Past max_wait_s the answer is 'not reserved, wait this long' and the window is untouched."""
    limiter = RateLimiter(redis_client, KEYS, Limits(per_sec=1, per_min=100))
    first, second, third = claimed(3)
    assert limiter.acquire("default", first, lease_s=30, max_wait_s=0.5, now_s=NOW).reserved
    denied = limiter.acquire("default", second, lease_s=30, max_wait_s=0.5, now_s=NOW)
    assert (denied.reserved, denied.wait_s) == (False, SEC_WINDOW_MS / 1000)
    again = limiter.acquire("default", third, lease_s=30, max_wait_s=0.5, now_s=NOW)
    assert again.wait_s == denied.wait_s  # the denied ask took no slot


def test_a_cooldown_holds_every_slot_back(redis_client, claimed):
    """During a RATE_001 cooldown the first slot is at its end."""
    limiter = RateLimiter(redis_client, KEYS, Limits(per_sec=80, per_min=4800))
    redis_client.set(KEYS.cooldown("default"), int((NOW + 2) * 1000))
    (grant,) = reserve_all(limiter, claimed(1))
    assert grant.wait_s == pytest.approx(2.0)


def test_a_limit_the_gateway_announces_is_adopted(redis_client, claimed):
    """X-RateLimit-sec-Limit: 5 makes the sixth slot wait, though 80/s was configured."""
    limiter = RateLimiter(redis_client, KEYS, Limits(per_sec=80, per_min=4800))
    limiter.observe("default", RateLimitHeaders(sec_limit=5, min_limit=4800), now_s=NOW)
    slots = slot_times(reserve_all(limiter, claimed(6)))
    assert slots[5] - slots[0] == pytest.approx(SEC_WINDOW_MS / 1000, abs=0.01)


def test_less_remaining_than_we_think_tightens_the_window(redis_client, claimed):
    """Another client used the key: 'remaining 2' of 10 leaves us two calls this second."""
    limiter = RateLimiter(redis_client, KEYS, Limits(per_sec=10, per_min=4800))
    added = limiter.observe("default", RateLimitHeaders(sec_limit=10, sec_remaining=2), now_s=NOW)
    assert added == 8
    grants = reserve_all(limiter, claimed(3), max_wait_s=0.1)
    assert [g.reserved for g in grants] == [True, True, False]


def test_more_remaining_than_we_think_changes_nothing(redis_client, claimed):
    """The headers only ever tighten the log, never loosen it."""
    limiter = RateLimiter(redis_client, KEYS, Limits(per_sec=10, per_min=4800))
    reserve_all(limiter, claimed(4))
    assert (
        limiter.observe("default", RateLimitHeaders(sec_limit=10, sec_remaining=9), now_s=NOW) == 0
    )


def test_an_execution_without_its_claim_gets_no_slot(redis_client, claimed):
    """A delivery whose lease ran out cannot reserve: ClaimLost."""
    limiter = RateLimiter(redis_client, KEYS, Limits(per_sec=10, per_min=4800))
    (execution,) = claimed(1)
    redis_client.delete(KEYS.claim("default", "j0"))
    with pytest.raises(ClaimLost):
        limiter.acquire("default", execution, lease_s=30, max_wait_s=1, now_s=time.time())
