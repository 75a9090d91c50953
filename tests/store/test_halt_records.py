"""Who halted an account decides whether the halt may end by itself; old records are read too."""

from __future__ import annotations

from worker.store.keys import Keys
from worker.store.switches import Switches

KEYS = Keys("hr:")


def test_an_operator_halt_is_marked_and_never_lifted_automatically(redis_client):
    """`halt` marks the record as the operator's; auto_resume leaves it, resume lifts it."""
    switches = Switches(redis_client, KEYS)
    assert switches.halt("a", reason="maintenance")
    assert switches.halted("a").by_operator
    assert switches.auto_resume("a") is None
    assert switches.halted("a") is not None
    assert switches.resume("a") == 0
    assert switches.halted("a") is None


def test_records_without_the_mark_are_read_by_their_code(redis_client):
    """A record of an older version: MANUAL is an operator's halt, a Gateway code is not."""
    switches = Switches(redis_client, KEYS)
    redis_client.hset(KEYS.halt("old_op"), mapping={"code": "MANUAL", "reason": "x", "since": 1})
    redis_client.hset(KEYS.halt("old_gw"), mapping={"code": "AUTH_001", "reason": "", "since": 1})
    assert switches.halted("old_op").by_operator
    assert not switches.halted("old_gw").by_operator
    assert switches.auto_resume("old_op") is None
    assert switches.auto_resume("old_gw") == 0
    assert switches.halted("old_gw") is None


def test_an_operator_halt_over_a_gateway_halt_makes_it_the_operators(redis_client):
    """Halting an account the Gateway halted keeps it halted until an operator resumes it."""
    switches = Switches(redis_client, KEYS)
    redis_client.hset(KEYS.halt("a"), mapping={"code": "AUTH_001", "reason": "", "since": 1})
    assert not switches.halt("a", reason="investigating")
    assert switches.halted("a").by_operator
    assert switches.auto_resume("a") is None


def test_the_probe_lease_lets_one_probe_per_interval(redis_client):
    """Two workers asking at once: one gets the probe; the other waits for the next interval."""
    first, second = Switches(redis_client, KEYS), Switches(redis_client, KEYS)
    assert first.probe_due("a", 30)
    assert not second.probe_due("a", 30)
    assert second.probe_due("b", 30)
