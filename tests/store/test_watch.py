"""The switch watch: a call that waited for its slot looks again only when a switch was set.

A real Redis and its pub/sub: every script that sets a halt, a billing breaker or a cooldown
publishes the account; a token taken before moves once the watch hears it. A watch that is not
subscribed, or whose connection stopped answering, cannot tell: it says changed.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis

from tests.support.jobs import KEYS, add_job
from tests.support.processes import wait_for
from worker.store.claims import Execution
from worker.store.connect import connect_listener
from worker.store.jobs import JobStore
from worker.store.ratelimit import RateLimit
from worker.store.switches import Switches
from worker.store.transitions import Transitions
from worker.store.watch import ALIVE_S, SwitchWatch

RATE = RateLimit(per_sec=1000, per_min=100_000)


def started(url: str) -> SwitchWatch:
    watch = SwitchWatch(connect_listener(url), KEYS)
    wait_for(lambda: watch.token() is not None, what="the subscription")
    return watch


@pytest.fixture
def watch(redis_url):
    watch = started(redis_url)
    yield watch
    watch.stop()


def claimed(jobs: JobStore, transitions: Transitions, job_id: str) -> Execution:
    add_job(jobs, job_id)
    execution = Execution(job_id, 1, "a")
    transitions.begin(execution, now=time.time(), lease_s=5, probe_interval_s=5, rate=RATE)
    return execution


def test_before_it_listens_the_watch_cannot_say_nothing_changed(redis_url):
    """Not yet subscribed: no token, and every call looks again."""
    watch = SwitchWatch(connect_listener(redis_url), KEYS)
    try:
        assert watch.token() is None
        assert watch.changed(None)
    finally:
        watch.stop()


def test_an_operator_halt_is_heard(watch, redis_client):
    """`msgworker halt brand_a`: a token taken before it moves; one taken after does not."""
    before = watch.token()
    assert not watch.changed(before)
    Switches(redis_client, KEYS).halt("brand_a", reason="maintenance")
    wait_for(lambda: watch.changed(before), what="the halt heard")
    after = watch.token()
    assert not watch.changed(after)


@pytest.mark.parametrize("switch", ["halt", "breaker", "cooldown"])
def test_each_switch_a_settlement_sets_is_heard(watch, jobs, switch, transitions):
    """A halting answer, a billing park that opens the breaker, a RATE_001 cooldown."""
    execution = claimed(jobs, transitions, "j1")
    before = watch.token()
    now = time.time()
    if switch == "halt":
        transitions.hold(execution, now=now, code="AUTH_001", reason="bad key")
    elif switch == "breaker":
        transitions.park(
            execution, now=now, code="BILL_001", reason="billing", record={}, open_breaker=True
        )
    else:
        transitions.retry(
            execution, now=now, delay_s=2, action="reschedule", cooldown_until=now + 2
        )
    wait_for(lambda: watch.changed(before), what=f"the {switch} heard")


def test_a_settlement_that_sets_nothing_is_not_heard(watch, jobs, redis_client, transitions):
    """A backoff without a cooldown, a park without the breaker: nothing to look at again."""
    first, second = claimed(jobs, transitions, "j1"), claimed(jobs, transitions, "j2")
    before = watch.token()
    transitions.retry(first, now=time.time(), delay_s=1, action="backoff")
    transitions.park(second, now=time.time(), code="PARAM_001", reason="permanent", record={})
    # Messages arrive in the order they were published: once this one is heard, any the
    # settlements published would have been too, and it moves the token by one.
    redis_client.publish(KEYS.switched, "sentinel")
    wait_for(lambda: watch.changed(before), what="the sentinel heard")
    assert watch.token() == before + 1


def test_a_lost_subscription_makes_every_call_look_until_it_is_back(watch, redis_client):
    """Killed pub/sub connection: deaf, so every call looks again; subscribed again, quiet."""
    before = watch.token()
    redis_client.client_kill_filter(_type="pubsub")
    wait_for(lambda: watch.changed(before), what="the deafness noticed")
    again = wait_for(watch.token, what="subscribed again")
    assert again != before
    assert not watch.changed(again)


def test_a_connection_gone_silent_makes_every_call_look(own_redis):
    """Redis frozen (a network gone silent: nothing closes, nothing raises): once its pings go
    unanswered the watch says changed; thawed, it hears again."""
    watch = started(own_redis.url)
    try:
        before = watch.token()
        os.kill(own_redis.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: watch.changed(before), timeout_s=ALIVE_S * 4, what="deaf")
            assert watch.token() is None
        finally:
            os.kill(own_redis.pid, signal.SIGCONT)
        wait_for(lambda: watch.token() is not None, what="hearing again")
        redis.Redis.from_url(own_redis.url).ping()
    finally:
        watch.stop()
