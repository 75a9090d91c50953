"""worker/http/body.py and batch.py: strict JSON, and a batch checked only up to its 101st error."""

from __future__ import annotations

import json

import pytest

from worker.http.batch import check_batch
from worker.http.body import parse_json
from worker.http.problems import ERRORS_MAX, NotJSON

MESSAGE = {"to": "905321234567", "type": "text", "text": {"body": "hello"}}
ACCOUNTS = frozenset({"default"})


def test_a_key_twice_is_refused_by_name_at_any_depth():
    """A key twice in any object, however deep, is refused naming that key."""
    with pytest.raises(NotJSON) as refused:
        parse_json(b'{"messages": [{"text": {"body": "a", "body": "b"}}]}')
    assert refused.value.error == 'the body is not JSON: duplicate key "body"'


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
def test_only_utf8_without_a_byte_order_mark_is_read(encoding):
    """UTF-16 and UTF-32 (json.loads would guess them from the bytes) and a UTF-8 byte order
    mark are refused."""
    with pytest.raises(NotJSON):
        parse_json(json.dumps(MESSAGE).encode(encoding))


def test_strict_json_reads_what_it_always_read():
    """A document with distinct keys in UTF-8 (non-ASCII text included) reads as before."""
    document = {"messages": [{**MESSAGE, "text": {"body": "Sipariş gönderildi ✓"}}], "n": [1, 2.5]}
    assert parse_json(json.dumps(document, ensure_ascii=False).encode()) == document


def test_a_batch_is_checked_up_to_its_first_error_past_the_cap():
    """Of 500 bad items, only those up to the 101st error are validated."""
    body = json.dumps({"messages": [{**MESSAGE, "to": "bad"}] * 500}).encode()
    checked = check_batch(body, now=0.0, accounts=ACCOUNTS)
    assert len(checked.errors) == ERRORS_MAX + 1
    assert checked.jobs == []
    assert checked.items == 500


def test_a_valid_batch_becomes_its_jobs():
    """A valid batch: one job per item, in order, and no errors."""
    body = json.dumps({"messages": [MESSAGE, {"message": MESSAGE, "priority": "high"}]}).encode()
    checked = check_batch(body, now=0.0, accounts=ACCOUNTS)
    assert [job.priority for job in checked.jobs] == ["normal", "high"]
    assert checked.errors == []
