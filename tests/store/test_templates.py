"""Template holds against a real Redis: a failed 132015/132016 holds its job and its template
for the account; the account's pending jobs using that template are held at their begin, no
others; a release puts every one of them back on the schedule once, in batches."""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial

import pytest

from tests.support.jobs import _claim, add_job, send, take
from tests.support.messages import template, text
from tests.support.receipts import apply_statuses
from worker.store.claims import Execution, Opening
from worker.store.history import history_event
from worker.store.keys import template_field
from worker.store.ratelimit import RateLimit
from worker.store.receipts import Applied, ReceiptAction, ReceiptStatus, StatusUpdate
from worker.store.states import JobState
from worker.store.templates import (
    TEMPLATE_PAUSED,
    HeldBy,
    HoldReason,
    Released,
    TemplateHolds,
    hold_record,
)

PAUSED = {"code": 132015, "title": "Template is paused"}


@pytest.fixture
def receipts(runtime, redis_url):
    return partial(apply_statuses, redis_url, runtime.keys)


@pytest.fixture
def holds(runtime):
    return TemplateHolds(runtime.redis, runtime.keys)


def paused(wamid, at, *, action=ReceiptAction.HOLD_TEMPLATE, reason="paused"):
    return StatusUpdate(
        wamid,
        ReceiptStatus.FAILED,
        at,
        error=PAUSED,
        code="WA_132015",
        action=action,
        description="Template is paused",
        hold_reason=reason,
    )


def begin(runtime, job_id):
    """Dispatch and begin a queued job as a worker does: its claim."""
    execution = Execution(job_id, take(runtime, job_id), holder=f"test-{job_id}")
    return runtime.transitions.begin(
        execution, now=time.time(), lease_s=30, probe_interval_s=30, rate=RateLimit(1000, 100_000)
    )


def hold(holds, name="spring_sale", language="en_US", account="default"):
    record = hold_record(HoldReason.PAUSED, code="PAUSED", by=HeldBy.WHATSAPP, now=time.time())
    return holds.hold(account, name, language, record)


def release(holds, name="spring_sale", language="en_US", account="default"):
    event = history_event(time.time(), "released", action="template_release")
    return holds.release(account, name, language, now=time.time(), event=event)


def test_a_failed_132015_holds_the_job_and_its_template(runtime, receipts, holds):
    """The sent job is pending again, held with reason template_paused, its payload kept, its
    records no longer expiring and its send-once entry cleared; the template is held, paused."""
    add_job(runtime.jobs, "j1", message=template())
    sent_at = send(runtime, "j1", "wamid.1")
    [result] = receipts(paused("wamid.1", sent_at + 1)).results
    assert result.applied is Applied.APPLIED
    job = runtime.jobs.get("j1")
    assert (job.state, job.held_reason) == (JobState.HELD, TEMPLATE_PAUSED)
    assert job.message == template()
    assert job.receipt.status is ReceiptStatus.FAILED
    assert job.history[-1]["action"] == "hold_template"
    assert runtime.redis.ttl(runtime.keys.job("j1")) == -1
    assert not runtime.redis.exists(runtime.keys.ledger("default", "j1"))
    [held] = holds.held("default")
    assert (held.name, held.language, held.reason, held.code, held.by, held.jobs) == (
        "spring_sale",
        "en_US",
        "paused",
        "WA_132015",
        "whatsapp",
        1,
    )
    assert held.since == pytest.approx(time.time(), abs=5)


def test_a_failed_132015_on_a_message_that_is_no_template_parks_it(runtime, receipts, holds):
    """No template to hold: the job is parked as undelivered and nothing of the account held."""
    add_job(runtime.jobs, "j1")
    sent_at = send(runtime, "j1", "wamid.1")
    receipts(paused("wamid.1", sent_at + 1))
    assert runtime.jobs.get("j1").state is JobState.PARKED
    assert holds.held("default") == []


def test_the_held_templates_jobs_are_held_at_their_begin_and_no_others(runtime, holds):
    """Same template and language: held, no call; another language, another template, a text
    message, another account's job with the same template: they go."""
    jobs = {
        "same": ("default", template()),
        "other_language": ("default", template(language="tr")),
        "other_template": ("default", template("welcome")),
        "free_form": ("default", text()),
        "other_account": ("b", template()),
    }
    for job_id, (account, message) in jobs.items():
        add_job(runtime.jobs, job_id, account=account, message=message)
    assert hold(holds)
    verdicts = {job_id: begin(runtime, job_id) for job_id in jobs}
    assert (verdicts["same"].verdict, verdicts["same"].detail) == ("held", TEMPLATE_PAUSED)
    assert {j: c.verdict for j, c in verdicts.items() if j != "same"} == dict.fromkeys(
        set(jobs) - {"same"}, "go"
    )
    job = runtime.jobs.get("same")
    assert (job.state, job.held_reason, job.attempts) == (JobState.HELD, TEMPLATE_PAUSED, 0)
    assert [h.jobs for h in holds.held("default")] == [1]


def test_a_release_puts_every_held_job_back_once_and_each_is_sent_again(
    runtime, receipts, holds, monkeypatch
):
    """Five jobs held (one by its failed delivery), released two per script call: each is queued
    again exactly once, and its next begin calls the Gateway (not a duplicate)."""
    monkeypatch.setattr("worker.store.templates.RELEASE_BATCH", 2)
    add_job(runtime.jobs, "sent", message=template())
    sent_at = send(runtime, "sent", "wamid.1")
    receipts(paused("wamid.1", sent_at + 1))
    waiting = [f"j{n}" for n in range(4)]
    for job_id in waiting:
        add_job(runtime.jobs, job_id, message=template())
        assert begin(runtime, job_id).verdict == "held"
    released = release(holds)
    assert (released.was_held, released.jobs) == (True, 5)
    assert holds.held("default") == []
    due = runtime.redis.zrange(runtime.keys.due("default", "normal"), 0, -1)
    assert sorted(m.partition("|")[0] for m in due) == sorted(["sent", *waiting])
    for job_id in ["sent", *waiting]:
        assert runtime.jobs.get(job_id).state is JobState.QUEUED
        assert begin(runtime, job_id).verdict == "go"
    assert release(holds) == Released(was_held=False, jobs=0)


def test_a_job_held_twice_by_mistake_is_released_once(runtime, holds):
    """A release passes each job once even when asked for the same template twice in a row."""
    add_job(runtime.jobs, "j1", message=template())
    hold(holds)
    begin(runtime, "j1")
    assert release(holds).jobs == 1
    hold(holds)
    assert release(holds).jobs == 0
    assert runtime.redis.zcard(runtime.keys.due("default", "normal")) == 1


def test_holding_again_keeps_the_first_holds_time(runtime, holds):
    """A second hold (disabled after paused) takes its reason, not its time."""
    first = hold_record(HoldReason.PAUSED, code="PAUSED", by=HeldBy.WHATSAPP, now=1000.0)
    again = hold_record(HoldReason.DISABLED, code="DISABLED", by=HeldBy.WHATSAPP, now=2000.0)
    assert holds.hold("default", "spring_sale", "en_US", first)
    assert not holds.hold("default", "spring_sale", "en_US", again)
    [held] = holds.held("default")
    assert (held.since, held.reason, held.code) == (1000.0, "disabled", "DISABLED")


def test_a_job_of_an_older_version_is_held_by_its_message(runtime, holds):
    """A job written before the template field: its template is read from its message."""
    add_job(runtime.jobs, "j1", message=template())
    runtime.redis.hdel(runtime.keys.job("j1"), "template")
    hold(holds)
    assert begin(runtime, "j1").verdict == "held"


def test_the_template_field_names_a_template_whole(runtime):
    """Name and language are encoded parts, so one template never matches another's range."""
    add_job(runtime.jobs, "j1", message=template("a_b", "en"))
    stored = runtime.redis.hget(runtime.keys.job("j1"), "template")
    assert stored == template_field("a_b", "en") == "a_b|en"
    add_job(runtime.jobs, "j2")
    assert runtime.redis.hget(runtime.keys.job("j2"), "template") == ""


def test_a_template_held_during_a_release_keeps_its_new_jobs(runtime, holds, monkeypatch):
    """Held again between two batches of a release: the release stops, the new hold's jobs wait."""
    monkeypatch.setattr("worker.store.templates.RELEASE_BATCH", 1)
    for job_id in ("j1", "j2"):
        add_job(runtime.jobs, job_id, message=template())
    hold(holds)
    begin(runtime, "j1")
    begin(runtime, "j2")
    calls = []
    script = holds._release

    def held_again_after_the_first(**call):
        reply = script(**call)
        if not calls:
            hold(holds)
        calls.append(reply)
        return reply

    monkeypatch.setattr(holds, "_release", held_again_after_the_first)
    assert release(holds).jobs == 1
    assert [h.jobs for h in holds.held("default")] == [1]


def test_only_the_execution_that_begun_it_is_affected(runtime, holds):
    """A job already calling when its template is held is not touched by the hold."""
    add_job(runtime.jobs, "j1", message=template())
    _claim(runtime, "j1", "calling")
    hold(holds)
    assert runtime.jobs.get("j1").state is JobState.SENDING


def test_the_begin_a_send_chains_holds_the_next_job_of_a_held_template(runtime, holds):
    """A send's settlement begins the group's next job in the same script: with the account's
    template held, that job is held too (the settlement's look at the account counts the hold)."""
    add_job(runtime.jobs, "free", message=text())
    add_job(runtime.jobs, "next", message=template())
    take(runtime, "next")
    execution = _claim(runtime, "free", "a")
    hold(holds)
    then = Opening(Execution("next", 1, "b"), 30, 30, RateLimit(1000, 100_000))
    record = runtime.transitions.mark_sent(execution, "wamid.free", now=time.time(), then=then)
    assert (record.next.verdict, record.next.detail) == ("held", TEMPLATE_PAUSED)
    assert runtime.jobs.get("next").state is JobState.HELD


def test_a_132015_that_came_before_its_send_holds_the_next_job_the_send_begins(
    runtime, receipts, holds
):
    """A failed 132015 that came before the send was recorded is applied by the send's
    settlement, which holds the template: the group's next job of that template, begun in the
    same script, is held too (the settlement's look at the account came before the hold)."""
    add_job(runtime.jobs, "first", message=template())
    add_job(runtime.jobs, "next", message=template())
    take(runtime, "next")
    execution = _claim(runtime, "first", "a")
    receipts(paused("wamid.first", time.time()))  # no job has this wamid yet: kept early
    then = Opening(Execution("next", 1, "b"), 30, 30, RateLimit(1000, 100_000))
    record = runtime.transitions.mark_sent(execution, "wamid.first", now=time.time(), then=then)
    assert runtime.jobs.get("first").state is JobState.HELD
    assert (record.next.verdict, record.next.detail) == ("held", TEMPLATE_PAUSED)


def test_a_132016_after_a_132015_makes_the_hold_disabled_from_its_first_time(
    runtime, receipts, holds
):
    """Paused, then disabled by a later failure: one hold, its reason the latest (so the
    disabled alert fires), its time the first."""
    for n in (1, 2):
        add_job(runtime.jobs, f"j{n}", message=template())
    first = send(runtime, "j1", "wamid.1")
    second = send(runtime, "j2", "wamid.2")
    receipts(paused("wamid.1", first + 1))
    [before] = holds.held("default")
    disabled = replace(paused("wamid.2", second + 1, reason="disabled"), code="WA_132016")
    receipts(disabled)
    [after] = holds.held("default")
    assert (after.reason, after.code, after.since) == ("disabled", "WA_132016", before.since)


def test_a_release_cut_short_is_listed_as_releasing_and_a_second_release_finishes_it(
    runtime, holds, monkeypatch
):
    """A release lifts the hold with its first batch: stopped there, its other jobs are still
    held with no hold to show them, so the list says the template is ``releasing`` with its
    jobs; the next release of it puts them back, and the list is empty again."""
    monkeypatch.setattr("worker.store.templates.RELEASE_BATCH", 1)
    hold(holds)
    for n in range(3):
        add_job(runtime.jobs, f"j{n}", message=template())
        assert begin(runtime, f"j{n}").verdict == "held"
    calls = 0
    real = holds._release

    def first_batch_only(**call):
        nonlocal calls
        calls += 1
        if calls > 1:
            raise ConnectionError("serve stopped")
        return real(**call)

    monkeypatch.setattr(holds, "_release", first_batch_only)
    with pytest.raises(ConnectionError):
        release(holds)
    [unfinished] = holds.held("default")
    assert (unfinished.name, unfinished.reason, unfinished.jobs) == (
        "spring_sale",
        HoldReason.RELEASING,
        2,
    )
    monkeypatch.setattr(holds, "_release", real)
    assert release(holds) == Released(was_held=False, jobs=2)
    assert holds.held("default") == []
    assert {runtime.jobs.get(f"j{n}").state for n in range(3)} == {JobState.QUEUED}
