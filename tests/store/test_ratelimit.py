"""The cluster-wide limiter on a real Redis: slots in order, both windows, cooldowns, learning.

The limiter is part of claiming a job (begin.lua) and of settling it (settle.lua), so these
tests drive it the way deliveries do.
"""

from __future__ import annotations

import itertools

import pytest

from worker.outcome import RateLimitHeaders
from worker.store.claims import Execution, Verdict
from worker.store.keys import Keys
from worker.store.ratelimit import MIN_WINDOW_MS, SEC_WINDOW_MS, RateLimit
from worker.store.records import NewJob
from worker.store.states import JobState

KEYS = Keys("rl:")
NOW = 1_800_000_000.0
BODY = {"to": "905321234567", "type": "text", "text": {"body": "hi"}}
SEC = SEC_WINDOW_MS / 1000


@pytest.fixture
def store_keys():
    return KEYS


def claims(jobs, transitions, n, rate, *, now=NOW, first=0):
    """n deliveries asking for a slot at ``now``, in order."""
    new = [NewJob(f"j{i}", "default", f"j{i}", BODY, due_at=now) for i in range(first, first + n)]
    jobs.add(new, now=now)
    return [
        transitions.begin(
            Execution(f"j{i}", 1, f"h{i}"), now=now, lease_s=3600, probe_interval_s=30, rate=rate
        )
        for i in range(first, first + n)
    ]


def slots(found, now=NOW):
    assert all(c.verdict is Verdict.GO for c in found)
    return [now + c.wait_s for c in found]


def test_slots_are_evenly_spaced_and_no_window_holds_more_than_the_limit(jobs, transitions):
    """200 asks at once under 10/s: slots a tenth of a window apart, never more than 10 a window."""
    times = slots(
        claims(jobs, transitions, 200, RateLimit(per_sec=10, per_min=10_000, max_wait_s=3600))
    )
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap == pytest.approx(SEC / 10, abs=0.002) for gap in gaps)  # no burst
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + SEC) <= 10
    # The limit is used fully: 10 calls a window, every window.
    assert times[-1] - times[0] == pytest.approx(199 * SEC / 10, abs=0.01)


def test_the_minute_window_binds_when_it_is_the_tighter(jobs, transitions):
    """With 100/s but 20/min, the 21st slot waits for the first to leave the minute window."""
    times = slots(
        claims(jobs, transitions, 21, RateLimit(per_sec=100, per_min=20, max_wait_s=3600))
    )
    assert times[19] - times[0] < 1
    assert times[20] - times[0] == pytest.approx(MIN_WINDOW_MS / 1000, abs=0.01)


def test_a_long_wait_goes_to_the_schedule_and_reserves_nothing(jobs, redis_client, transitions):
    """Past max_wait the job is deferred on the schedule, unclaimed, no attempt used, no slot."""
    rate = RateLimit(per_sec=1, per_min=100, max_wait_s=0.5)
    first, deferred, again = claims(jobs, transitions, 3, rate)
    assert first.verdict is Verdict.GO
    assert (deferred.verdict, deferred.wait_s) == (Verdict.DEFERRED, SEC)
    assert again.wait_s == deferred.wait_s  # the deferred ask took no slot
    job = jobs.get("j1")
    assert (job.state, job.attempts, job.gen) == (JobState.SCHEDULED, 0, 2)
    assert redis_client.zscore(KEYS.due("default", "normal"), "j1|2") == pytest.approx(NOW + SEC)
    assert not redis_client.exists(KEYS.claim("default", "j1"))
    assert job.history[-1]["action"] == "rate_wait"


def test_a_cooldown_holds_every_slot_back(jobs, redis_client, transitions):
    """During a RATE_001 cooldown the first slot is at its end."""
    redis_client.set(KEYS.cooldown("default"), int((NOW + 2) * 1000))
    (claim,) = claims(jobs, transitions, 1, RateLimit(per_sec=80, per_min=4800, max_wait_s=5))
    assert claim.wait_s == pytest.approx(2.0)


def settle_with(transitions, headers, *, job="j0", holder="h0", now=NOW):
    transitions.mark_sent(Execution(job, 1, holder), "wamid.x", now=now, headers=headers)


def test_a_limit_the_gateway_announces_is_adopted(jobs, transitions):
    """X-RateLimit-sec-Limit: 5 makes the sixth slot wait a window, though 80/s was configured."""
    rate = RateLimit(per_sec=80, per_min=4800, max_wait_s=3600)
    claims(jobs, transitions, 1, rate, now=NOW - 10)
    settle_with(transitions, RateLimitHeaders(sec_limit=5, min_limit=4800), now=NOW - 10)
    times = slots(claims(jobs, transitions, 6, rate, first=1))
    assert times[5] - times[0] == pytest.approx(SEC, abs=0.01)


def test_less_remaining_than_we_think_tightens_the_window(jobs, transitions):
    """Another client used the key: 'remaining 2' of 10 leaves us two calls this second."""
    rate = RateLimit(per_sec=10, per_min=4800, max_wait_s=0.5)
    claims(jobs, transitions, 1, rate)
    settle_with(transitions, RateLimitHeaders(sec_limit=10, sec_remaining=2))
    found = claims(jobs, transitions, 3, rate, first=1)
    assert [c.verdict for c in found] == [Verdict.GO, Verdict.GO, Verdict.DEFERRED]
    assert found[2].wait_s == pytest.approx(SEC, abs=0.01)  # until the window frees a call


def test_more_remaining_than_we_think_changes_nothing(jobs, transitions):
    """The headers only ever tighten the log, never loosen it: the next slots keep their pace."""
    rate = RateLimit(per_sec=10, per_min=4800, max_wait_s=3600)
    claims(jobs, transitions, 1, rate)
    settle_with(transitions, RateLimitHeaders(sec_limit=10, sec_remaining=10))
    times = slots(claims(jobs, transitions, 10, rate, first=1))
    assert times[0] == pytest.approx(NOW + SEC / 10, abs=0.002)
    assert times[9] == pytest.approx(NOW + SEC, abs=0.01)  # the 11th call: a window after the 1st


def test_a_configured_limit_is_a_ceiling_over_a_higher_announcement(jobs, transitions):
    """RATE_PER_SEC=5 set: the Gateway announcing 80 leaves the limiter at 5 calls a window."""
    rate = RateLimit.configured(5, None, max_wait_s=3600)
    claims(jobs, transitions, 1, rate, now=NOW - 10)
    settle_with(transitions, rate.in_force(RateLimitHeaders(sec_limit=80)), now=NOW - 10)
    times = slots(claims(jobs, transitions, 6, rate, first=1))
    assert times[5] - times[0] == pytest.approx(SEC, abs=0.01)


def test_a_lower_announcement_wins_over_a_configured_limit(jobs, transitions):
    """RATE_PER_SEC=40 set, the Gateway announcing 5: five calls a window."""
    rate = RateLimit.configured(40, None, max_wait_s=3600)
    claims(jobs, transitions, 1, rate, now=NOW - 10)
    settle_with(transitions, rate.in_force(RateLimitHeaders(sec_limit=5)), now=NOW - 10)
    times = slots(claims(jobs, transitions, 6, rate, first=1))
    assert times[5] - times[0] == pytest.approx(SEC, abs=0.01)


def test_unset_limits_start_from_the_documented_ones():
    """Nothing configured: 80/s and 4,800/min, followed up to the sane maximum."""
    rate = RateLimit.configured(None, None)
    assert (rate.per_sec, rate.per_min) == (80, 4800)
    assert rate.in_force(RateLimitHeaders(sec_limit=200)).sec_limit == 200


def test_a_stored_limit_of_zero_is_not_a_limit(jobs, redis_client, transitions):
    """A limit of 0 left in Redis (by an older version) does not break or stop claiming."""
    redis_client.hset(KEYS.limits("default"), mapping={"sec": 0, "min": -5})
    found = claims(jobs, transitions, 2, RateLimit(per_sec=10, per_min=4800, max_wait_s=3600))
    assert [c.verdict for c in found] == [Verdict.GO, Verdict.GO]


def test_a_huge_fill_is_capped_and_quick(jobs, redis_client, transitions):
    """Limit 300,000 / remaining 0 under a ceiling of 50: fifty entries, not 300,000 ZADDs."""
    rate = RateLimit.configured(50, None)
    claims(jobs, transitions, 1, rate)
    settle_with(transitions, rate.in_force(RateLimitHeaders(sec_limit=300_000, sec_remaining=0)))
    assert redis_client.zcard(KEYS.window("default", "sec")) == 50
    redis_client.hset(KEYS.limits("default"), "min", 600_000)
    settle_with(
        transitions, RateLimitHeaders(min_limit=600_000, min_remaining=0), job="j1", holder="h"
    )
    assert redis_client.zcard(KEYS.window("default", "min")) <= 2001
