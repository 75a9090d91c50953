"""The chaos suite's invariant checker catches what it is there to catch (real Redis, no workers)."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.invariants import check, ok_responses
from tests.support.jobs import take
from tests.support.messages import text
from worker.store.claims import Execution
from worker.store.ratelimit import RateLimit


def accepted(n, wamid):
    """A sandbox log entry for job n's body."""
    return {"seq": n, "wamid": wamid, "body": text(n), "at": time.time()}


def claim(runtime, job_id):
    execution = Execution(job_id, take(runtime, job_id), holder="invariants-test")
    verdict = runtime.transitions.begin(
        execution, now=time.time(), lease_s=30, probe_interval_s=30, rate=RateLimit(1000, 100_000)
    ).verdict
    assert verdict == "go"
    return execution


def sent(runtime, job_id, wamid):
    runtime.transitions.mark_sent(claim(runtime, job_id), wamid, now=time.time())


def test_a_job_sent_once_passes_and_one_in_no_place_is_lost(runtime):
    """Sent with its wamid accepted: sent; a queued job nobody schedules: lost, named."""
    first, second = runtime.producer.enqueue_many([text(1), text(2)])
    sent(runtime, first, "wamid.1")
    runtime.redis.delete(runtime.keys.due("default", "normal"))  # the second job: in no place
    report = check([first, second], runtime, [accepted(1, "wamid.1")])
    assert report.sent == [first]
    assert list(report.lost) == [second]
    with pytest.raises(AssertionError, match="lost jobs"):
        report.assert_holds()


def test_a_second_acceptance_without_a_lost_answer_is_a_real_duplicate(runtime):
    """Accepted twice with no ambiguous event: a real duplicate, and the check fails."""
    (job_id,) = runtime.producer.enqueue_many([text(1)])
    sent(runtime, job_id, "wamid.2")
    report = check([job_id], runtime, [accepted(1, "wamid.1"), accepted(1, "wamid.2")])
    assert report.real_duplicates == {job_id: 2}
    with pytest.raises(AssertionError, match="sent twice"):
        report.assert_holds()


def test_a_second_acceptance_after_a_lost_answer_is_an_ambiguous_duplicate(runtime):
    """Accepted twice after an answer was lost (WORKER_LOST in its history): ambiguous, allowed."""
    (job_id,) = runtime.producer.enqueue_many([text(1)])
    runtime.redis.rpush(
        runtime.keys.history(job_id),
        json.dumps({"at": 1, "event": "attempt", "code": "WORKER_LOST"}),
    )
    sent(runtime, job_id, "wamid.2")
    report = check([job_id], runtime, [accepted(1, "wamid.1"), accepted(1, "wamid.2")])
    assert report.ambiguous_duplicates == {job_id: 2}
    report.assert_holds()


def test_parked_needs_a_dead_letter_and_held_needs_a_halt(runtime):
    """Parked without a DLQ record, or held with no halt: lost; held behind a halt: pending."""
    parked, held = runtime.producer.enqueue_many([text(1), text(2)])
    runtime.redis.hset(runtime.keys.job(parked), "state", "parked")
    runtime.redis.hset(runtime.keys.job(held), "state", "held")
    runtime.redis.zrem(runtime.keys.due("default", "normal"), f"{parked}|1", f"{held}|1")
    runtime.redis.rpush(runtime.keys.held("default"), held)
    report = check([parked, held], runtime, [])
    assert set(report.lost) == {parked, held}
    runtime.switches.halt("default", reason="test")
    report = check([parked, held], runtime, [])
    assert report.pending == [held]
    assert list(report.lost) == [parked]


def test_the_ok_metric_must_match_what_the_gateway_accepted_and_answered(runtime):
    """OK summed over expositions is compared with accepted minus unanswered acceptances."""
    (job_id,) = runtime.producer.enqueue_many([text(1)])
    sent(runtime, job_id, "wamid.1")
    exposition = 'msgworker_api_responses_total{code="OK",group="none",status="200"} 1.0\n'
    assert ok_responses([exposition, exposition]) == 2
    check([job_id], runtime, [accepted(1, "wamid.1")], expositions=[exposition]).assert_holds()
    report = check([job_id], runtime, [accepted(1, "wamid.1")], expositions=[exposition] * 2)
    with pytest.raises(AssertionError, match="msgworker_api_responses_total"):
        report.assert_holds()
