"""The limiter's settings, without Redis: start values, ceilings, and accounts of their own.

How the scripts pace calls with these is tests/store/test_ratelimit.py's part.
"""

from __future__ import annotations

import pytest

from worker.outcome import RateLimitHeaders
from worker.store.ratelimit import (
    DEFAULT_PER_MIN,
    DEFAULT_PER_SEC,
    MIN_LIMIT_MAX,
    SEC_LIMIT_MAX,
    RateLimit,
)


def test_unset_limits_start_from_the_documented_ones_and_follow_up_to_the_sane_maximum():
    rate = RateLimit.configured(None, None)
    assert rate.limits_in_force(None, None) == (DEFAULT_PER_SEC, DEFAULT_PER_MIN)
    assert rate.limits_in_force(200, 9_000) == (200, 9_000)
    assert rate.limits_in_force(10**6, 10**8) == (SEC_LIMIT_MAX, MIN_LIMIT_MAX)
    assert rate.max_wait_s == 1.0


def test_configured_limits_are_where_pacing_starts_and_its_ceilings():
    rate = RateLimit.configured(40, 2_000, max_wait_s=3.0)
    assert rate.limits_in_force(None, None) == (40, 2_000)
    assert rate.limits_in_force(100, 10_000) == (40, 2_000)  # a higher announcement: the ceiling
    assert rate.limits_in_force(10, 500) == (10, 500)  # a lower one is followed
    assert rate.max_wait_s == 3.0


def test_configured_limits_above_the_documented_ones_are_used_from_the_start():
    """A deployment allowed more than 80/s and 4,800/min paces by its own figures at once."""
    assert RateLimit.configured(200, 9_000).limits_in_force(None, None) == (200, 9_000)


@pytest.mark.parametrize(("per_sec", "per_min"), [(40, None), (None, 2_000)])
def test_each_limit_left_unset_follows_the_gateway_on_its_own(per_sec, per_min):
    rate = RateLimit.configured(per_sec, per_min)
    sec, per_minute = rate.limits_in_force(5_000, 500_000)
    assert sec == (40 if per_sec else 5_000)
    assert per_minute == (2_000 if per_min else 500_000)


@pytest.mark.parametrize("learned", [0, -5])
def test_a_learned_limit_below_one_is_no_limit(learned):
    """A limit of 0 or less (left by an older version) falls back to the start values."""
    assert RateLimit.configured(40, 2_000).limits_in_force(learned, learned) == (40, 2_000)
    assert RateLimit.configured(40, 2_000).limits_in_force(1, 1) == (1, 1)


def test_announced_limits_are_learnt_under_the_ceilings_and_the_rest_kept():
    headers = RateLimitHeaders(
        sec_limit=100, sec_remaining=7, min_limit=9_000, min_remaining=8, ignored=("x",)
    )
    assert RateLimit.configured(40, 2_000).in_force(headers) == RateLimitHeaders(
        sec_limit=40, sec_remaining=7, min_limit=2_000, min_remaining=8, ignored=("x",)
    )
    assert RateLimit.configured(None, None).in_force(headers) == headers
    assert RateLimit.configured(500, 10_000).in_force(RateLimitHeaders()) == RateLimitHeaders()


def test_accounts_with_limits_of_their_own_get_them_and_the_rest_the_deployments():
    rate = RateLimit.configured(20, None, max_wait_s=2.5).with_accounts(
        {"otp": (5, None), "promo": (None, 300), "same": (20, None)}
    )
    assert set(rate.accounts) == {"otp", "promo"}  # "same" is the deployment's: nothing its own
    otp, promo = rate.for_account("otp"), rate.for_account("promo")
    assert otp.limits_in_force(None, None) == (5, DEFAULT_PER_MIN)
    assert otp.limits_in_force(50, 10**7) == (5, MIN_LIMIT_MAX)
    assert promo.limits_in_force(None, None) == (DEFAULT_PER_SEC, 300)
    assert promo.limits_in_force(10**5, 10**5) == (SEC_LIMIT_MAX, 300)
    assert otp.max_wait_s == promo.max_wait_s == 2.5
    assert rate.for_account("same") is rate
    assert rate.for_account("anyone") is rate


def test_without_accounts_of_their_own_every_account_has_the_deployments_limits():
    rate = RateLimit.configured(20, None).with_accounts({})
    assert rate.accounts == {}
    assert rate.for_account("default") is rate


def test_the_longest_in_worker_wait_reaches_the_scripts_in_whole_milliseconds():
    """The scripts count time in milliseconds: a 2.5 s wait is 2,500 of them, not a rounding
    more (a wait a millisecond long would let a call wait past its bound)."""
    assert RateLimit.configured(40, 2_000, max_wait_s=2.5).limits()["max_wait_ms"] == 2_500
    assert RateLimit.configured(40, 2_000, max_wait_s=1.0).limits()["max_wait_ms"] == 1_000
