"""How often answers' remaining counts reach the settlement: once per account and interval."""

from __future__ import annotations

from worker.outcome import RateLimitHeaders
from worker.send.reconcile import Reconciliation

FULL = RateLimitHeaders(sec_limit=80, sec_remaining=3, min_limit=4000, min_remaining=900)
LIMITS_ONLY = RateLimitHeaders(sec_limit=80, min_limit=4000)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_accounts_answers_are_compared_once_per_interval_and_keep_their_limits():
    clock = Clock()
    reconciliation = Reconciliation(0.05, clock=clock)
    assert reconciliation.for_settlement("a", FULL) == FULL
    clock.now += 0.049
    assert reconciliation.for_settlement("a", FULL) == LIMITS_ONLY
    clock.now += 0.001
    assert reconciliation.for_settlement("a", FULL) == FULL
    assert reconciliation.for_settlement("a", FULL) == LIMITS_ONLY


def test_accounts_are_compared_each_on_its_own_interval():
    clock = Clock()
    reconciliation = Reconciliation(0.05, clock=clock)
    assert reconciliation.for_settlement("a", FULL) == FULL
    assert reconciliation.for_settlement("b", FULL) == FULL
    assert reconciliation.for_settlement("a", FULL) == LIMITS_ONLY


def test_an_answer_without_remaining_counts_does_not_use_up_the_interval():
    reconciliation = Reconciliation(0.05, clock=Clock())
    partial = RateLimitHeaders(sec_limit=80, ignored=("sec_remaining",))
    assert reconciliation.for_settlement("a", partial) == partial
    assert reconciliation.for_settlement("a", FULL) == FULL
