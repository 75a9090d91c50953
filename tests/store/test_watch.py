"""The switch watch: a call that waited for its slot looks again only when a switch was set.

A real Redis and its pub/sub: every script that sets a halt, a billing breaker or a cooldown
publishes the account, and the watch says so for moments before it, for that account only.
"""

from __future__ import annotations

import time

import pytest

from tests.support.jobs import KEYS, add_job
from tests.support.processes import wait_for
from worker.store.claims import Execution
from worker.store.jobs import JobStore
from worker.store.ratelimit import RateLimit
from worker.store.switches import Switches
from worker.store.watch import SwitchWatch

RATE = RateLimit(per_sec=1000, per_min=100_000)


@pytest.fixture
def watch(redis_url):
    watch = SwitchWatch(redis_url, KEYS)
    yield watch
    watch.stop()


@pytest.fixture
def jobs(redis_client):
    return JobStore(redis_client, KEYS, retention_s=3600)


def listening(watch: SwitchWatch) -> float:
    """Waits until the watch is subscribed; a moment after which it has heard everything."""
    wait_for(lambda: not watch.changed_since("default", time.time()), what="the subscription")
    return time.time()


def claimed(jobs: JobStore, job_id: str, account: str = "default") -> Execution:
    add_job(jobs, job_id, account=account)
    execution = Execution(job_id, 1, "a")
    jobs.begin(execution, now=time.time(), lease_s=5, probe_interval_s=5, rate=RATE)
    return execution


def test_before_it_listens_the_watch_cannot_say_nothing_changed(watch):
    """Not yet subscribed: every account may have changed (the call looks again)."""
    assert watch.changed_since("default", time.time())


def test_an_operator_halt_is_heard_for_its_account_only(watch, redis_client):
    """`msgworker halt brand_a`: brand_a changed since before it, default did not."""
    moment = listening(watch)
    Switches(redis_client, KEYS).halt("brand_a", reason="maintenance")
    wait_for(lambda: watch.changed_since("brand_a", moment), what="the halt heard")
    assert not watch.changed_since("default", moment)
    assert not watch.changed_since("brand_a", time.time() + 1)  # nothing after it


@pytest.mark.parametrize("switch", ["halt", "breaker", "cooldown"])
def test_each_switch_a_settlement_sets_is_heard(watch, jobs, switch):
    """A halting answer, a billing park that opens the breaker, a RATE_001 cooldown."""
    moment = listening(watch)
    execution = claimed(jobs, "j1")
    now = time.time()
    if switch == "halt":
        jobs.hold(execution, now=now, code="AUTH_001", reason="bad key")
    elif switch == "breaker":
        jobs.park(
            execution, now=now, code="BILL_001", reason="billing", record={}, open_breaker=True
        )
    else:
        jobs.retry(execution, now=now, delay_s=2, action="reschedule", cooldown_until=now + 2)
    wait_for(lambda: watch.changed_since("default", moment), what=f"the {switch} heard")


def test_a_settlement_that_sets_nothing_is_not_heard(watch, jobs, redis_client):
    """A backoff without a cooldown, a park without the breaker: nothing to look at again."""
    moment = listening(watch)
    jobs.retry(claimed(jobs, "j1"), now=time.time(), delay_s=1, action="backoff")
    jobs.park(claimed(jobs, "j2"), now=time.time(), code="PARAM_001", reason="permanent", record={})
    # Messages arrive in the order they were published: once this one is heard, any the
    # settlements published would have been too.
    redis_client.publish(KEYS.switched, "sentinel")
    wait_for(lambda: watch.changed_since("sentinel", moment), what="the sentinel heard")
    assert not watch.changed_since("default", moment)


def test_a_lost_subscription_makes_every_account_look_until_it_is_back(watch, redis_client):
    """Killed pub/sub connection: deaf, so every call looks again; subscribed again, quiet."""
    moment = listening(watch)
    redis_client.client_kill_filter(_type="pubsub")
    wait_for(lambda: watch.changed_since("default", moment), what="the deafness noticed")
    again = listening(watch)
    assert again > moment
    assert not watch.changed_since("default", again)
