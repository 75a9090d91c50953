"""The batch's own Idempotency-Key, repeated keys inside a batch, strict JSON types: on a real
serve and a real Redis."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.serve import TOKEN, Service

pytestmark = pytest.mark.processes  # a real msgworker serve

MESSAGE = {"to": "905321234567", "type": "text", "text": {"body": "hello"}}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def service(redis_server, tmp_path_factory):
    server = Service(
        tmp_path_factory.mktemp("batch-keys"), broker_url=redis_server.url, ingest_tokens=TOKEN
    ).start()
    yield server
    server.stop()


@pytest.fixture
def http(service, redis_client):
    """A client of the service; Redis flushed before the test."""
    with httpx.Client(base_url=service.url, timeout=30) as client:
        yield client


def _jobs(redis_client) -> int:
    return sum(1 for key in redis_client.scan_iter("*:job:*") if not key.endswith(":history"))


def _batch(n: int, body: str = "hello") -> dict[str, object]:
    return {"messages": [{**MESSAGE, "text": {"body": f"{body} {i}"}} for i in range(n)]}


def test_a_batch_sent_again_with_its_key_answers_the_first_ids(http, redis_client):
    """The same Idempotency-Key again: 200 with the first batch's ids and duplicate, nothing
    enqueued (even with other items); another key is another batch."""
    keyed = {**AUTH, "Idempotency-Key": "import-2026-12-07"}
    first = http.post("/v1/messages/batch", json=_batch(3), headers=keyed)
    assert first.status_code == 202
    assert _jobs(redis_client) == 3
    for again in (_batch(3), _batch(5, "changed")):
        answer = http.post("/v1/messages/batch", json=again, headers=keyed)
        assert (answer.status_code, answer.json()) == (
            200,
            {"ids": first.json()["ids"], "duplicate": True},
        )
    assert _jobs(redis_client) == 3
    other = http.post(
        "/v1/messages/batch", json=_batch(3), headers={**AUTH, "Idempotency-Key": "b"}
    )
    assert other.status_code == 202
    assert _jobs(redis_client) == 6


def test_identical_keyed_batches_at_once_make_one_set_of_jobs(service, redis_client):
    """Eight copies of one keyed batch sent together: one 202, seven 200 with the same ids, and
    one set of jobs in Redis."""

    async def send_all() -> list[httpx.Response]:
        headers = {**AUTH, "Idempotency-Key": "retry-storm"}
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post("/v1/messages/batch", json=_batch(50), headers=headers)
                    for _ in range(8)
                )
            )

    answers = asyncio.run(send_all())
    assert sorted(answer.status_code for answer in answers) == [200] * 7 + [202]
    assert len({tuple(answer.json()["ids"]) for answer in answers}) == 1
    assert _jobs(redis_client) == 50


def test_a_bad_batch_key_is_422_naming_the_header(http, redis_client):
    """An Idempotency-Key no message key could be is refused like one, naming the header."""
    answer = http.post(
        "/v1/messages/batch", json=_batch(1), headers={**AUTH, "Idempotency-Key": "a b"}
    )
    assert answer.status_code == 422
    assert [(e["index"], e["field"]) for e in answer.json()["errors"]] == [
        (None, "Idempotency-Key")
    ]
    assert redis_client.dbsize() == 0


def test_two_envelopes_with_one_key_are_422_naming_both_indexes(http, redis_client):
    """Two items of one account with the same idempotency_key: a 422 naming both indexes, nothing
    enqueued; the same key on two accounts is two keys."""
    items = [
        {"message": MESSAGE, "idempotency_key": "k1"},
        MESSAGE,
        {"message": {**MESSAGE, "text": {"body": "other"}}, "idempotency_key": "k1"},
    ]
    answer = http.post("/v1/messages/batch", json={"messages": items}, headers=AUTH)
    assert answer.status_code == 422
    errors = answer.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [
        (0, "idempotency_key"),
        (2, "idempotency_key"),
    ]
    assert "messages[2]" in errors[0]["error"]
    assert "messages[0]" in errors[1]["error"]
    assert redis_client.dbsize() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": MESSAGE, "ttl_s": True}, "ttl_s"),
        ({"message": MESSAGE, "ttl_s": "60"}, "ttl_s"),
        (
            {"message": {**MESSAGE, "text": {"body": "hi", "preview_url": 1}}},
            "message.text.preview_url",
        ),
    ],
)
def test_a_value_of_the_wrong_json_type_is_422_naming_the_field(http, redis_client, body, field):
    """true is not a number and 1 is not a boolean: 422 naming the field, single or batch."""
    single = http.post("/v1/messages", json=body, headers=AUTH)
    assert (single.status_code, [e["field"] for e in single.json()["errors"]]) == (422, [field])
    batch = http.post("/v1/messages/batch", json={"messages": [body]}, headers=AUTH)
    assert (batch.status_code, [e["field"] for e in batch.json()["errors"]]) == (422, [field])
    assert redis_client.dbsize() == 0
