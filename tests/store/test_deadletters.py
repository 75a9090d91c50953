"""The dead-letter queue against a real Redis: records written once with their fields, listed
oldest first and filtered, replayed paced, purged, and aged out when the DLQ has a maximum age."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.jobs import add_job, park, take
from tests.support.messages import text
from worker.store.deadletters import DeadLetter, DeadLetters, ReplayReport, Selection
from worker.store.keys import LANES, own_keys
from worker.store.protocol import PURGE, REPLAY
from worker.store.restore import Restore
from worker.store.scripts import script_source
from worker.store.states import JobState

RETENTION_S = 3600


@pytest.fixture
def dlq(runtime):
    return DeadLetters(runtime.redis, runtime.keys, retention_s=RETENTION_S)


def parked(runtime, job_id, *, account="default", code="BILL_001", reason="billing", **fields):
    """A job enqueued, then parked by a worker with ``code``; its id."""
    park(
        runtime, add_job(runtime.jobs, job_id, account=account), code=code, reason=reason, **fields
    )
    return job_id


def letter(job_id, *, parked_at, code="BILL_001", account="default"):
    """A dead letter as an export holds it (no job behind it)."""
    return DeadLetter(
        id=job_id,
        idempotency_key=f"key-{job_id}",
        account=account,
        message=text(job_id),
        code=code,
        group=None,
        status=None,
        description="",
        params={},
        reason="billing",
        attempts=1,
        enqueued_at=parked_at - 10,
        parked_at=parked_at,
    )


def ids(records):
    return [record.id for record in records]


def test_a_parked_job_has_one_dead_letter_with_its_record_fields(runtime, dlq):
    """Parking writes one record holding the job's id, key, account, payload, code, reason and
    times; it is counted under its code and listed."""
    before = time.time()
    add_job(runtime.jobs, "j1", key="order-1", account="brand_a")
    park(runtime, "j1", code="BILL_001", reason="billing")
    record = dlq.get("j1")
    assert record is not None
    assert (record.id, record.idempotency_key, record.account) == ("j1", "order-1", "brand_a")
    assert (record.code, record.reason, record.status, record.attempts) == (
        "BILL_001",
        "billing",
        402,
        1,
    )
    assert record.message == text("j1")
    assert before <= record.enqueued_at <= record.parked_at <= time.time()
    assert dlq.counts() == {"BILL_001": 1}
    assert ids(dlq.select(Selection())) == ["j1"]


def test_a_job_parked_again_after_a_replay_still_has_one_dead_letter(runtime, dlq):
    """Replayed, then parked again: one record (the new one), counted once."""
    parked(runtime, "j1", code="BILL_001")
    assert dlq.replay(["j1"], rate_per_s=100).replayed == 1
    park(runtime, "j1", code="AUTH_001", reason="permanent")
    assert ids(dlq.select(Selection())) == ["j1"]
    assert dlq.get("j1").code == "AUTH_001"
    assert dlq.counts() == {"AUTH_001": 1}


def test_a_record_of_another_version_is_read_by_its_known_fields(runtime, dlq):
    """Fields a newer version added are ignored; fields an older one lacked get defaults."""
    parked(runtime, "j1", shelf="B-7")
    assert dlq.get("j1").id == "j1"
    old = {"id": "j2", "idempotency_key": "k", "account": "default", "message": {}}
    old |= {"code": "HTTP_500", "reason": "retries_exhausted", "enqueued_at": 1, "parked_at": 2}
    record = DeadLetter.from_json(json.dumps(old))
    assert (record.group, record.status, record.description, record.params) == (None, None, "", {})
    assert record.attempts == 0


def test_an_unknown_id_has_no_dead_letter(dlq):
    """get() of an id the DLQ does not hold is None, not an error."""
    assert dlq.get("nope") is None
    assert dlq.counts() == {}


def test_select_lists_oldest_first_and_filters_by_account_code_ids_and_time(runtime, dlq):
    """Oldest first; account and code narrow it, ids pick (in the order given), since cuts the
    older ones off, and limit counts matching records."""
    parked(runtime, "j1", account="a", code="BILL_001")
    parked(runtime, "j2", account="b", code="AUTH_001", reason="permanent")
    parked(runtime, "j3", account="a", code="AUTH_001", reason="permanent")
    assert ids(dlq.select(Selection())) == ["j1", "j2", "j3"]
    assert ids(dlq.select(Selection(account="a"))) == ["j1", "j3"]
    assert ids(dlq.select(Selection(code="AUTH_001"))) == ["j2", "j3"]
    assert ids(dlq.select(Selection(account="a", code="AUTH_001"))) == ["j3"]
    assert ids(dlq.select(Selection(ids=("j3", "j1", "nope")))) == ["j3", "j1"]
    assert ids(dlq.select(Selection(since=dlq.get("j2").parked_at))) == ["j2", "j3"]
    assert ids(dlq.select(Selection(limit=2))) == ["j1", "j2"]
    assert ids(dlq.select(Selection(account="a", limit=1))) == ["j1"]
    assert dlq.counts() == {"BILL_001": 1, "AUTH_001": 2}


def test_select_reads_a_large_dlq_whole_and_stops_at_its_limit(runtime, dlq):
    """450 records (more than two reads' worth): all of them, in time order; a filtered, limited
    selection stops at its limit wherever the matches fall."""
    start = time.time() - 1000
    letters = [
        letter(f"{n:032x}", parked_at=start + n, code="A" if n % 3 else "B") for n in range(450)
    ]
    Restore(runtime.redis, runtime.keys).put_back(letters[::-1])
    assert ids(dlq.select(Selection())) == ids(letters)
    wanted = [record.id for record in letters if record.code == "B"]
    assert ids(dlq.select(Selection(code="B", limit=120))) == wanted[:120]
    assert dlq.counts() == {"A": 300, "B": 150}


def test_replay_schedules_the_jobs_paced_and_takes_them_out_of_the_dlq(runtime, dlq):
    """Each replayed job is pending again, due 1/rate after the one before (from now plus the
    offset), with its payload and a history line; its record and count are gone."""
    for job_id in ("j1", "j2", "j3"):
        parked(runtime, job_id)
    now = time.time()
    report = dlq.replay(["j1", "j2", "j3"], rate_per_s=4, now=now, offset_s=10)
    assert report == ReplayReport(replayed=3)
    for n, job_id in enumerate(["j1", "j2", "j3"]):
        job = runtime.jobs.get(job_id)
        assert job.state is JobState.SCHEDULED
        assert job.due_at - now == pytest.approx(10 + n * 0.25)  # approx is relative
        assert job.message == text(job_id)
        assert job.history[-1]["event"] == "replayed"
        assert dlq.get(job_id) is None
    assert list(dlq.select(Selection())) == []
    assert dlq.counts() == {}


def test_a_replayed_job_expires_no_more_and_is_sent_like_any_other(runtime, dlq):
    """Replayed now: queued at once, and a worker can take and begin it again."""
    parked(runtime, "j1")
    dlq.replay(["j1"], rate_per_s=100)
    job = runtime.jobs.get("j1")
    assert job.state is JobState.QUEUED
    assert runtime.redis.ttl(runtime.keys.job("j1")) == -1  # pending: nothing of it expires
    assert take(runtime, "j1") == job.gen


def test_replay_leaves_an_expired_one_and_counts_the_missing(runtime, dlq):
    """A dead letter whose job expired stays in the DLQ (counted expired); an id with no record
    is counted missing; neither is scheduled."""
    park(runtime, add_job(runtime.jobs, "old", expires_in=60))
    report = dlq.replay(["old", "nope"], rate_per_s=100, now=time.time() + 120)
    assert report == ReplayReport(expired=1, missing=1)
    assert report.done == 2
    assert dlq.get("old") is not None
    assert runtime.jobs.get("old").state is JobState.PARKED


def test_purge_removes_the_records_and_settles_their_jobs_for_the_retention(runtime, dlq):
    """Purged: record, index entry and count gone; the job is kept the retention, then expires;
    the others stay. The number returned counts only records that were there."""
    parked(runtime, "j1")
    parked(runtime, "j2")
    assert dlq.purge(["j1", "nope"]) == 1
    assert dlq.get("j1") is None
    assert ids(dlq.select(Selection())) == ["j2"]
    assert dlq.counts() == {"BILL_001": 1}
    assert RETENTION_S - 5 < runtime.redis.ttl(runtime.keys.job("j1")) <= RETENTION_S
    assert runtime.redis.ttl(runtime.keys.job("j2")) == -1
    assert dlq.purge(["j1"]) == 0


def test_remove_old_does_nothing_without_a_maximum_age(runtime, dlq):
    """With no maximum age a dead letter waits for as long as it takes."""
    parked(runtime, "j1")
    assert dlq.remove_old(now=time.time() + 10 * 365 * 86400) == 0
    assert dlq.get("j1") is not None


def test_remove_old_removes_only_what_is_older_than_the_maximum_age_with_its_job(runtime):
    """Older than max_age_s: record and job gone, payload and all, up to ``limit`` a call;
    younger ones stay."""
    dlq = DeadLetters(runtime.redis, runtime.keys, retention_s=RETENTION_S, max_age_s=100)
    now = time.time()
    Restore(runtime.redis, runtime.keys).put_back(
        [letter(f"{n:032x}", parked_at=now - 500 + n) for n in range(3)]
    )
    parked(runtime, "young")
    assert dlq.remove_old(now=now, limit=2) == 2
    assert dlq.remove_old(now=now) == 1
    assert ids(dlq.select(Selection())) == ["young"]
    assert dlq.remove_old(now=time.time() + 101) == 1
    assert runtime.jobs.get("young") is None
    assert dlq.counts() == {}


def test_purge_leaves_a_record_rewritten_for_another_owner_since_it_was_read(runtime, dlq):
    """purge.lua names the job's own keys from the record as read before it runs: a record that
    names another account or key by then is left whole (nothing of another job's touched) for
    the next purge, which reads it again, and so is one an age-out read as old that was parked
    again since; an unreadable record goes, counted nowhere."""
    parked(runtime, "j1")
    script = runtime.redis.register_script(script_source(PURGE))
    k = runtime.keys
    fixed = {"dead_letter_index": k.dead_letter_index, "dead_letter_counts": k.dead_letter_counts}

    def purge_as_read(job_id, account, key, parked_before=""):
        each_key = [{"dead_letter": k.dead_letter(job_id), **own_keys(k, job_id, account, key)}]
        each = [{"id": job_id, "account": account, "key": key}]
        values = {"retention_s": RETENTION_S, "forget": "1", "parked_before": parked_before}
        return script(
            keys=PURGE.key_list(fixed, each=each_key), args=PURGE.arguments(values, each=each)
        )

    assert purge_as_read("j1", "brand_b", "j1") == 0
    assert dlq.get("j1") is not None
    assert dlq.counts() == {"BILL_001": 1}
    assert runtime.redis.ttl(k.job("j1")) == -1
    assert purge_as_read("j1", "default", "j1", parked_before=repr(time.time() - 100)) == 0
    assert runtime.jobs.get("j1") is not None
    assert dlq.purge(["j1"]) == 1
    runtime.redis.set(k.dead_letter("junk"), "{not json")
    runtime.redis.zadd(k.dead_letter_index, {"junk": 1})
    assert dlq.purge(["junk"]) == 1
    assert not runtime.redis.exists(k.dead_letter("junk"))
    assert runtime.redis.zscore(k.dead_letter_index, "junk") is None


def test_replay_leaves_a_record_rewritten_for_another_owner_or_unreadable(runtime, dlq):
    """replay.lua names the job's keys from the record as read before it runs: a record that
    names another account or key by then is left whole, as is one that does not parse (a
    re-run, or a purge, deals with them); the rest are replayed."""
    parked(runtime, "j1")
    k = runtime.keys
    script = runtime.redis.register_script(script_source(REPLAY))
    fixed = {
        "dead_letter_index": k.dead_letter_index,
        "dead_letter_counts": k.dead_letter_counts,
        "scheduled_accounts": k.scheduled_accounts,
    }

    def replay_as_read(job_id, account, key):
        each_key = [
            {
                "dead_letter": k.dead_letter(job_id),
                **own_keys(k, job_id, account, key),
                "breaker": k.breaker(account),
                "breaker_probe": k.breaker_probe(account),
                **{f"due_{lane}": k.due(account, lane) for lane in LANES},
            }
        ]
        values = {
            "now": time.time(),
            "start_offset_s": 0,
            "interval_s": 0.01,
            "retention_s": RETENTION_S,
            "event": "{}",
        }
        each = [{"id": job_id, "account": account, "key": key}]
        reply = script(
            keys=REPLAY.key_list(fixed, each=each_key), args=REPLAY.arguments(values, each=each)
        )
        return REPLAY.fields(reply)

    nothing = {"replayed": "0", "already_sent": "0", "expired": "0", "missing": "0"}
    assert replay_as_read("j1", "brand_b", "j1") == {**nothing, "delivered": "0"}
    assert runtime.jobs.get("j1").state is JobState.PARKED
    runtime.redis.set(k.dead_letter("junk"), "{not json")
    runtime.redis.zadd(k.dead_letter_index, {"junk": 1})
    report = dlq.replay(["j1", "junk"], rate_per_s=100)
    assert (report.replayed, report.missing) == (1, 0)
    assert runtime.jobs.get("j1").state is JobState.QUEUED
    assert runtime.redis.get(k.dead_letter("junk")) == "{not json"
