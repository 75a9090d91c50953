"""A Redis out of memory refuses an enqueue whole: StoreFull, and not one key written (a batch's
first jobs are not kept while its last ones are refused)."""

from __future__ import annotations

import pytest

from tests.support.keyspace import digest
from tests.support.messages import text
from worker.errors import StoreFull


@pytest.fixture
def full(redis_client):
    """Makes the server refuse every write that needs memory; room again after the test."""

    def fill() -> None:
        redis_client.config_set("maxmemory", 1)

    yield fill
    redis_client.config_set("maxmemory", 0)


def test_a_refused_batch_writes_nothing(runtime, redis_client, full):
    """Ten jobs enqueued while Redis is full: StoreFull, and the keyspace is as it was."""
    runtime.producer.enqueue(text("before"))
    before = digest(redis_client)
    full()
    with pytest.raises(StoreFull):
        runtime.producer.enqueue_many([text(n) for n in range(10)])
    assert digest(redis_client) == before


def test_a_refused_single_enqueue_writes_nothing(runtime, redis_client, full):
    """One job with an idempotency key while Redis is full: StoreFull, nothing written, and the
    key is free for the retry once there is room."""
    before = digest(redis_client)
    full()
    with pytest.raises(StoreFull):
        runtime.producer.enqueue(text("x"), idempotency_key="order-9")
    assert digest(redis_client) == before
    redis_client.config_set("maxmemory", 0)
    first = runtime.producer.enqueue(text("x"), idempotency_key="order-9")
    assert runtime.jobs.get(first) is not None
