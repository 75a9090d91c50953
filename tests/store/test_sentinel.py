"""worker/store/connect.py on a real Sentinel group (a primary, two replicas, three sentinels):
every client finds the primary, and finds the new one after a failover by itself."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from tests.support.processes import wait_for
from tests.support.sentinel import SentinelGroup
from worker.errors import Unavailable
from worker.producer_async import AsyncJobStore, AsyncProducer
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.connect import connect_async_fail_fast, connect_redis
from worker.store.keys import Keys

pytestmark = [pytest.mark.redis, pytest.mark.timeout(180)]

TIMEOUT_S = 2.0
MESSAGE = {"to": "905321234567", "type": "text", "text": {"body": "hello"}}


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    """One Sentinel group for the module; each test leaves it whole (a killed node back)."""
    group = SentinelGroup(tmp_path_factory.mktemp("sentinel"))
    group.start()
    yield group
    group.stop()


def runtime_of(group: SentinelGroup) -> Runtime:
    return Runtime(
        Settings(redis_url=group.url, redis_timeout_s=TIMEOUT_S, _env_file=None), fail_fast=True
    )


def test_a_workers_client_carries_on_through_a_killed_primary(group):
    """A script call made while the primary is gone completes on the new one (a retry, no error):
    the script is loaded again there when the new primary never saw it."""
    client = connect_redis(group.url)
    counter = client.register_script("return redis.call('INCR', KEYS[1])")
    before = counter(keys=["ha:counter"])
    old = group.kill_primary()
    try:
        after = counter(keys=["ha:counter"])  # the primary is down while this call starts
        assert after >= 1
        assert group.primary_port() != old
    finally:
        group.bring_back(old)
        group.wait_settled(group.primary_port())
    assert before >= 1
    client.close()


def test_a_producer_raises_unavailable_within_the_timeout_then_finds_the_new_primary(group):
    """While no primary answers, enqueue raises Unavailable within REDIS_TIMEOUT_S; after the
    failover the same producer enqueues again, with no restart."""
    runtime = runtime_of(group)
    producer = runtime.producer
    producer.enqueue(MESSAGE, idempotency_key="before-the-kill")
    old = group.kill_primary()
    started = time.monotonic()
    with pytest.raises(Unavailable):
        producer.enqueue(MESSAGE, idempotency_key="during-the-kill")
    assert time.monotonic() - started < TIMEOUT_S + 1
    new, _ = group.wait_failover(old)
    second = wait_for(lambda: _enqueued(runtime, "after-the-kill"), timeout_s=10)
    assert runtime.jobs.get(second) is not None
    assert producer.enqueue(MESSAGE, idempotency_key="after-the-kill") == second
    group.bring_back(old)
    group.wait_settled(new)
    runtime.close()


def _enqueued(runtime: Runtime, key: str) -> str | None:
    try:
        return runtime.producer.enqueue(MESSAGE, idempotency_key=key)
    except Unavailable:
        return None


def test_a_connection_to_a_demoted_primary_is_found_again_not_refused(group):
    """After a failover that leaves the old primary up as a replica (SENTINEL FAILOVER), a
    pooled connection to it gets READONLY: the worker's client takes it for a lost connection
    and writes to the new primary; a producer fails at most once, as Unavailable."""
    worker = connect_redis(group.url)
    runtime = runtime_of(group)
    worker.set("ha:demoted", "before")
    runtime.producer.enqueue(MESSAGE)  # both clients hold a connection to the primary now
    old = group.primary_port()
    assert old is not None
    with redis.Redis(port=group.sentinels[0].port) as sentinel:
        sentinel.execute_command("SENTINEL FAILOVER", "msgworker-primary")
    new, _ = group.wait_failover(old)
    wait_for(lambda: group.role(old) == "slave", timeout_s=40, what="the old primary demoted")
    assert worker.set("ha:demoted", "after")
    failures = 0
    for _ in range(3):
        try:
            runtime.producer.enqueue(MESSAGE)
        except Unavailable:
            failures += 1
    assert failures <= 1
    with redis.Redis(port=new, decode_responses=True) as primary:
        assert primary.get("ha:demoted") == "after"
    group.wait_settled(new)
    worker.close()
    runtime.close()


def test_an_async_producer_finds_the_new_primary_by_itself(group):
    """The asyncio producer (msgworker serve, enqueue_async): Unavailable within the timeout
    while there is no primary, then enqueues on the new one."""

    async def scenario() -> tuple[float, str | None]:
        client = connect_async_fail_fast(group.url, timeout_s=TIMEOUT_S)
        producer = AsyncProducer(
            AsyncJobStore(client, Keys("msgworker:")),
            accounts=frozenset({"default"}),
            redis_timeout_s=TIMEOUT_S,
        )
        await producer.enqueue(MESSAGE)
        old = group.kill_primary()
        started = time.monotonic()
        with pytest.raises(Unavailable):
            await producer.enqueue(MESSAGE)
        took = time.monotonic() - started
        deadline = time.monotonic() + 15
        found = None
        while found is None and time.monotonic() < deadline:
            try:
                found = await producer.enqueue(MESSAGE, idempotency_key="async-after")
            except Unavailable:
                await asyncio.sleep(0.1)
        await client.aclose()
        group.bring_back(old)
        return took, found

    took, found = asyncio.run(scenario())
    assert took < TIMEOUT_S + 1
    assert found is not None
    group.wait_settled(group.primary_port())
