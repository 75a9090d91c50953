"""WhatsApp's receipts (delivery statuses) against a real Redis: stored on the job sent as their
wamid, forward only, a failed one parked or dropped as the routing says; one that comes before
its send is kept 60 s, for at most EARLY_CAP wamids, and applied when the send is recorded."""

from __future__ import annotations

import time
from functools import partial

import pytest

from tests.support.jobs import add_job, send
from tests.support.messages import text
from tests.support.receipts import apply_statuses
from worker.store.deadletters import DeadLetters
from worker.store.receipts import (
    EARLY_CAP,
    EARLY_KEEP_S,
    Applied,
    ReceiptAction,
    ReceiptStatus,
    StatusUpdate,
)
from worker.store.states import JobState

ERROR = {"code": 131026, "title": "Message undeliverable"}


@pytest.fixture
def receipts(runtime, redis_url):
    """Applies statuses as the webhook does: one asyncio round trip a request."""
    return partial(apply_statuses, redis_url, runtime.keys)


def sent(runtime, job_id, wamid):
    """A job enqueued and sent as ``wamid``; when it was sent."""
    return send(runtime, add_job(runtime.jobs, job_id), wamid)


def status(wamid, kind, at, **failed):
    return StatusUpdate(wamid, ReceiptStatus(kind), at, **failed)


def failed(wamid, at, action):
    return status(
        wamid,
        "failed",
        at,
        error=ERROR,
        code="WA_131026",
        action=action,
        description="undeliverable",
    )


def results(applying):
    return [result.applied for result in applying.results]


def test_a_status_is_stored_on_the_job_sent_as_its_wamid(runtime, receipts):
    """delivered: on the job with its time, in its history, and the seconds from acceptance."""
    sent_at = sent(runtime, "j1", "wamid.1")
    applying = receipts(status("wamid.1", "delivered", sent_at + 3))
    [result] = applying.results
    assert (result.applied, result.account) == (Applied.APPLIED, "default")
    assert result.delivered_after_s == pytest.approx(3)
    job = runtime.jobs.get("j1")
    assert (job.receipt.status, job.receipt.at, job.receipt.error) == (
        ReceiptStatus.DELIVERED,
        sent_at + 3,
        None,
    )
    assert job.history[-1]["event"] == "delivered"
    assert job.message == text("j1")  # delivered, not yet read: the payload stays
    assert applying.dropped == 0


def test_statuses_only_move_forward_and_repeats_change_nothing(runtime, receipts):
    """read, then the delivered and sent it overtook, then read again: only the first counts;
    read drops the payload (the record keeps metadata only)."""
    sent_at = sent(runtime, "j1", "wamid.1")
    applying = receipts(
        status("wamid.1", "read", sent_at + 5),
        status("wamid.1", "delivered", sent_at + 2),
        status("wamid.1", "sent", sent_at + 1),
        status("wamid.1", "read", sent_at + 5),
    )
    assert results(applying) == [Applied.APPLIED, Applied.STALE, Applied.STALE, Applied.STALE]
    job = runtime.jobs.get("j1")
    assert (job.receipt.status, job.receipt.at) == (ReceiptStatus.READ, sent_at + 5)
    assert [event["event"] for event in job.history].count("read") == 1
    assert job.message == {}


def test_failed_after_delivered_is_out_of_order_and_changes_nothing(runtime, receipts):
    """A failed after delivered (forged or shuffled) is ignored: no park, no dead letter."""
    sent_at = sent(runtime, "j1", "wamid.1")
    receipts(status("wamid.1", "delivered", sent_at + 1))
    applying = receipts(failed("wamid.1", sent_at + 2, ReceiptAction.PARK))
    assert results(applying) == [Applied.OUT_OF_ORDER]
    job = runtime.jobs.get("j1")
    assert (job.state, job.receipt.status) == (JobState.SENT, ReceiptStatus.DELIVERED)
    assert DeadLetters(runtime.redis, runtime.keys, retention_s=60).get("j1") is None


def test_failed_to_park_moves_the_payload_into_an_undelivered_dead_letter(runtime, receipts):
    """failed, routed to park: the job parked as undelivered with WA_<code>, the payload moved
    into its dead letter (with the wamid it was sent as), the error on the job's delivery."""
    sent_at = sent(runtime, "j1", "wamid.1")
    assert results(receipts(failed("wamid.1", sent_at + 1, ReceiptAction.PARK))) == [
        Applied.APPLIED
    ]
    job = runtime.jobs.get("j1")
    assert (job.state, job.last_code, job.parked_reason) == (
        JobState.PARKED,
        "WA_131026",
        "undelivered",
    )
    assert (job.receipt.status, job.receipt.error) == (ReceiptStatus.FAILED, ERROR)
    assert job.message == {}
    record = DeadLetters(runtime.redis, runtime.keys, retention_s=60).get("j1")
    assert (record.reason, record.code, record.wamid) == ("undelivered", "WA_131026", "wamid.1")
    assert record.message == text("j1")


def test_failed_to_drop_records_the_failure_and_drops_the_payload(runtime, receipts):
    """failed, routed to drop: recorded as failed, the payload gone, no dead letter."""
    sent_at = sent(runtime, "j1", "wamid.1")
    receipts(failed("wamid.1", sent_at + 1, ReceiptAction.DROP))
    job = runtime.jobs.get("j1")
    assert (job.state, job.receipt.status, job.message) == (
        JobState.SENT,
        ReceiptStatus.FAILED,
        {},
    )
    assert DeadLetters(runtime.redis, runtime.keys, retention_s=60).counts() == {}


def test_a_job_whatsapp_delivered_after_a_failure_is_never_replayed(runtime, receipts):
    """failed (parked), then delivered after all: the parked job learns it, and a replay
    settles it as sent instead of sending it again."""
    sent_at = sent(runtime, "j1", "wamid.1")
    receipts(failed("wamid.1", sent_at + 1, ReceiptAction.PARK))
    assert results(receipts(status("wamid.1", "delivered", sent_at + 2))) == [Applied.APPLIED]
    report = DeadLetters(runtime.redis, runtime.keys, retention_s=60).replay(["j1"], rate_per_s=10)
    assert (report.delivered, report.replayed) == (1, 0)
    assert runtime.jobs.get("j1").state is JobState.SENT


def test_a_receipt_lives_as_long_as_its_job(runtime, receipts):
    """A sent job's wamid finds it for as long as the job is kept, so a late read still lands."""
    sent_at = sent(runtime, "j1", "wamid.1")
    receipts(status("wamid.1", "delivered", sent_at + 1))
    job_ttl = runtime.redis.ttl(runtime.keys.job("j1"))
    assert job_ttl > 0
    assert abs(runtime.redis.ttl(runtime.keys.wamid("wamid.1")) - job_ttl) <= 1
    assert results(receipts(status("wamid.1", "read", sent_at + 3600))) == [Applied.APPLIED]


def test_a_status_before_its_send_is_kept_and_applied_when_the_send_is_recorded(runtime, receipts):
    """Unmatched now (no job has the wamid yet), applied as the send is recorded."""
    applying = receipts(status("wamid.early", "delivered", time.time()))
    [result] = applying.results
    assert (result.applied, result.account, result.delivered_after_s) == (
        Applied.UNMATCHED,
        "",
        None,
    )
    sent(runtime, "e1", "wamid.early")
    job = runtime.jobs.get("e1")
    assert job.receipt.status is ReceiptStatus.DELIVERED
    assert job.history[-1]["event"] == "delivered"


def test_an_unmatched_status_is_kept_sixty_seconds_then_dropped(runtime, receipts):
    """Its statuses expire EARLY_KEEP_S after they came (Redis drops them), and the index of
    arrivals forgets it when the next one comes after that, so it counts no more for the cap."""
    now = time.time()
    receipts(status("wamid.gone", "delivered", now), now=now)
    ttl_ms = runtime.redis.pttl(runtime.keys.early_statuses("wamid.gone"))
    assert (EARLY_KEEP_S - 5) * 1000 < ttl_ms <= EARLY_KEEP_S * 1000
    receipts(status("wamid.kept", "delivered", now), now=now + EARLY_KEEP_S - 1)
    assert runtime.redis.zscore(runtime.keys.early_arrivals, "wamid.gone") is not None
    receipts(status("wamid.next", "delivered", now), now=now + EARLY_KEEP_S + 1)
    assert runtime.redis.zscore(runtime.keys.early_arrivals, "wamid.gone") is None
    assert runtime.redis.zscore(runtime.keys.early_arrivals, "wamid.kept") is not None


def test_unmatched_statuses_are_kept_for_at_most_early_cap_wamids(runtime, receipts):
    """One wamid more than the cap: the least recently heard of is dropped (counted), and its
    send, recorded later, finds no status; the newest is still applied."""
    now = time.time()
    wamids = [f"wamid.{n}" for n in range(EARLY_CAP + 1)]
    dropped = receipts(status(wamids[0], "delivered", now), now=now).dropped
    for start in range(1, len(wamids), 1000):
        batch = [status(w, "delivered", now) for w in wamids[start : start + 1000]]
        dropped += receipts(*batch, now=now + 1).dropped
    assert dropped == 1
    sent(runtime, "first", wamids[0])
    sent(runtime, "last", wamids[-1])
    assert runtime.jobs.get("first").receipt is None
    assert runtime.jobs.get("last").receipt.status is ReceiptStatus.DELIVERED


def test_an_empty_webhook_touches_nothing(runtime, receipts):
    """No statuses: no round trip, nothing written."""
    applying = receipts()
    assert (applying.results, applying.dropped) == ([], 0)
    assert runtime.redis.dbsize() == 0
