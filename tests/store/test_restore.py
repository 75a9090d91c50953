"""Restoring an export: every line checked first (a bad one names its line and field), then
each record put back once; a record the DLQ holds, or whose job is pending, is skipped."""

from __future__ import annotations

import pytest

from tests.support.jobs import add_job, park
from tests.support.messages import text
from worker.store.deadletters import DeadLetters, Selection
from worker.store.keys import LANES
from worker.store.restore import BadRecord, Restore, RestoreReport, parse_export, parse_record

ACCOUNTS = frozenset({"default", "brand_a"})
JOB_ID = "0123456789abcdef0123456789abcdef"


def exported(job_id=JOB_ID, **changes):
    """One line of ``msgworker dlq export``, as JSON gives it back."""
    line = {
        "id": job_id,
        "idempotency_key": f"key-{job_id}",
        "account": "default",
        "message": text(job_id),
        "code": "BILL_001",
        "group": None,
        "status": 402,
        "description": "",
        "params": {},
        "reason": "billing",
        "attempts": 2,
        "enqueued_at": "2026-12-01T10:00:00+00:00",
        "parked_at": 1_796_119_260.5,
        "expires_at": None,
    }
    return line | changes


@pytest.fixture
def dlq(runtime):
    return DeadLetters(runtime.redis, runtime.keys, retention_s=3600)


@pytest.fixture
def restore(runtime):
    return Restore(runtime.redis, runtime.keys)


def test_a_line_becomes_the_dead_letter_it_describes():
    """Times as ISO 8601 or Unix seconds; nulls are absent fields."""
    record = parse_record(exported(), ACCOUNTS)
    assert (record.id, record.account, record.code, record.attempts) == (
        JOB_ID,
        "default",
        "BILL_001",
        2,
    )
    assert record.enqueued_at == 1_796_119_200.0  # 2026-12-01T10:00:00Z
    assert record.parked_at == 1_796_119_260.5
    assert record.expires_at is None


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"id": "j1"}, "id: not a job id"),
        ({"account": ""}, "account: missing or not text"),
        ({"account": "brand_b"}, "account: unknown account 'brand_b'"),
        ({"message": "hi"}, "message: missing or not an object"),
        ({"message": {"to": "1", "type": "text", "text": {"body": "hi"}}}, "message.to:"),
        ({"attempts": True}, "attempts: not a whole number"),
        ({"status": "402"}, "status: not an HTTP status"),
        ({"parked_at": None}, "parked_at: missing"),
        ({"parked_at": "2026-12-01T10:00:00"}, "parked_at: an ISO 8601 time needs a zone"),
        ({"enqueued_at": -1}, "enqueued_at: not a time"),
        ({"expires_at": "soon"}, "expires_at: not an ISO 8601 time"),
    ],
)
def test_a_bad_line_is_refused_naming_its_field(changes, problem):
    """Each field is checked, the payload as strictly as an enqueued one."""
    with pytest.raises(BadRecord, match=f"^{problem}"):
        parse_record(exported(**changes), ACCOUNTS)


def test_an_export_is_read_whole_one_problem_a_bad_line_and_a_repeat_counted_once():
    """Every bad line reported with its number; a record repeated in the file counts once."""
    other = "f" * 32
    lines = [(1, exported()), (2, exported(id="x")), (3, exported()), (4, []), (5, exported(other))]
    records, problems = parse_export(lines, ACCOUNTS)
    assert [record.id for record in records] == [JOB_ID, other]
    assert problems == [
        "line 2: id: not a job id",
        "line 4: not a dead-letter record (a JSON object)",
    ]


def test_put_back_writes_each_record_as_the_dlq_holds_it(restore, dlq):
    """Imported records read back equal, listed by parking time, counted by code."""
    older = parse_record(exported("a" * 32, parked_at=100.0, code="AUTH_001"), ACCOUNTS)
    newer = parse_record(exported("b" * 32, parked_at=200.0), ACCOUNTS)
    assert restore.put_back([newer, older]) == RestoreReport(imported=2)
    assert dlq.get(older.id) == older
    assert list(dlq.select(Selection())) == [older, newer]
    assert dlq.counts() == {"AUTH_001": 1, "BILL_001": 1}


def test_importing_twice_adds_nothing(restore, dlq):
    """The same export again: every record is already there, counts unchanged."""
    records = [parse_record(exported(f"{n:032x}"), ACCOUNTS) for n in range(450)]
    assert restore.put_back(records) == RestoreReport(imported=450)
    assert restore.put_back(records) == RestoreReport(already_there=450)
    assert dlq.counts() == {"BILL_001": 450}


def test_a_record_whose_job_is_pending_again_is_skipped(runtime, restore, dlq):
    """The job was replayed (queued again): its old record must not come back to be replayed
    twice."""
    add_job(runtime.jobs, JOB_ID)
    assert restore.put_back([parse_record(exported(), ACCOUNTS)]) == RestoreReport(not_parked=1)
    assert dlq.get(JOB_ID) is None
    assert dlq.counts() == {}


def test_a_purged_job_put_back_is_parked_for_as_long_as_it_takes(runtime, restore, dlq):
    """Purged (its job aging out), then imported: the record is back and the job no longer
    expires."""
    park(runtime, add_job(runtime.jobs, JOB_ID))
    record = dlq.get(JOB_ID)
    dlq.purge([JOB_ID])
    assert runtime.redis.ttl(runtime.keys.job(JOB_ID)) > 0
    assert restore.put_back([record]) == RestoreReport(imported=1)
    assert dlq.get(JOB_ID) == record
    assert runtime.redis.ttl(runtime.keys.job(JOB_ID)) == -1


def test_a_record_naming_another_account_than_its_parked_job_is_skipped(runtime, restore, dlq):
    """The import names the job's keys from the record: a record for a parked job of another
    account (or key) is not that job's, and nothing of the job is touched."""
    park(runtime, add_job(runtime.jobs, JOB_ID, account="default"))
    dlq.purge([JOB_ID])
    ttl = runtime.redis.ttl(runtime.keys.job(JOB_ID))
    record = parse_record(exported(account="brand_a"), ACCOUNTS)
    assert restore.put_back([record]) == RestoreReport(not_parked=1)
    assert dlq.get(JOB_ID) is None
    assert 0 < runtime.redis.ttl(runtime.keys.job(JOB_ID)) <= ttl


def test_importing_never_schedules_or_sends(runtime, restore):
    """Put back, a record makes no job and puts nothing on the schedule."""
    restore.put_back([parse_record(exported(), ACCOUNTS)])
    assert runtime.jobs.get(JOB_ID) is None
    assert all(runtime.redis.zcard(runtime.keys.due("default", lane)) == 0 for lane in LANES)
