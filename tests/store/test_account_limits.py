"""Each account's own rate ceilings (accounts file) pace its calls; other accounts keep theirs."""

from __future__ import annotations

import itertools

import pytest

from worker.store.claims import Execution, Verdict
from worker.store.jobs import JobStore
from worker.store.keys import Keys
from worker.store.ratelimit import SEC_WINDOW_MS, RateLimit
from worker.store.records import NewJob
from worker.store.transitions import Transitions

KEYS = Keys("acl:")
NOW = 1_800_000_000.0
BODY = {"to": "905321234567", "type": "text", "text": {"body": "hi"}}
SEC = SEC_WINDOW_MS / 1000


def slots(jobs, transitions, account, n, rate):
    """n deliveries of ``account`` asking for a slot at NOW: when each may call."""
    new = [NewJob(f"{account}{i}", account, f"k{i}", BODY, due_at=NOW) for i in range(n)]
    jobs.add(new, now=NOW)
    found = [
        transitions.begin(
            Execution(f"{account}{i}", 1, f"h{i}"),
            now=NOW,
            lease_s=3600,
            probe_interval_s=30,
            rate=rate,
        )
        for i in range(n)
    ]
    assert all(claim.verdict is Verdict.GO for claim in found)
    return [claim.wait_s for claim in found]


def test_an_account_with_its_own_ceiling_is_paced_by_it(redis_client):
    """otp at 5/s, promo at the deployment's 20/s: each account's slots follow its own limit."""
    jobs = JobStore(redis_client, KEYS)
    transitions = Transitions(redis_client, KEYS, retention_s=3600)
    rate = RateLimit.configured(20, None, max_wait_s=3600).with_accounts(
        {"otp": (5, None), "promo": (20, None)}
    )
    assert set(rate.accounts) == {"otp"}  # promo's limits are the deployment's: nothing to send
    otp, promo = (
        slots(jobs, transitions, "otp", 6, rate),
        slots(jobs, transitions, "promo", 21, rate),
    )
    assert all(b - a == pytest.approx(SEC / 5, abs=0.002) for a, b in itertools.pairwise(otp))
    assert all(b - a == pytest.approx(SEC / 20, abs=0.002) for a, b in itertools.pairwise(promo))
    assert rate.for_account("otp").sec_ceiling == 5
    assert rate.for_account("promo") is rate


def test_without_accounts_of_their_own_begin_gets_no_accounts_limits():
    """A deployment without an accounts file passes begin.lua no accounts' limits."""
    rate = RateLimit.configured(None, None).with_accounts({"default": (None, None)})
    assert rate.limits()["own_limits"] == ""
