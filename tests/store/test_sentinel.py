"""worker/store/connect.py on a real Sentinel group (a primary, two replicas, three sentinels):
every client finds the primary, and finds the new one after a failover by itself."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import TypeVar

import pytest
import redis

from tests.support.cluster import API_KEY
from tests.support.processes import wait_for
from tests.support.sentinel import SentinelGroup
from worker.errors import ReplicasMissing, Unavailable, WriteLost
from worker.outcome import Result
from worker.producer_async import AsyncJobStore, AsyncProducer
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.claims import Execution, Opening, Verdict
from worker.store.connect import connect_async_fail_fast, connect_redis
from worker.store.keys import Keys
from worker.store.records import Job
from worker.store.replication import Replication
from worker.store.states import JobState

pytestmark = [pytest.mark.redis, pytest.mark.timeout(180)]

T = TypeVar("T")

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
    pooled connection to it gets READONLY (inside a script too): the worker's client takes it
    for a lost connection and writes to the new primary; a producer fails at most once, as
    Unavailable."""
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
    # A script's write refused by the demoted primary is a script error, not READONLY itself.
    setter = worker.register_script("return redis.call('SET', KEYS[1], ARGV[1])")
    assert setter(keys=["ha:demoted"], args=["after"]) == "OK"
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


def _lose_the_primary_after(group: SentinelGroup, write: Callable[[], T]) -> T:
    """Replicas frozen (SIGSTOP) and cut off (the primary drops their links), ``write`` run, the
    primary killed, the replicas thawed: the new primary is a replica that never received what
    ``write`` wrote."""
    replicas = [group.node(port) for port in _replica_ports(group)]
    for node in replicas:
        node.signal(signal.SIGSTOP)
    with redis.Redis(port=group.primary_port()) as primary:
        primary.client_kill_filter(_type="replica")
    try:
        outcome = write()
    finally:
        old = group.kill_primary()
        for node in replicas:
            node.signal(signal.SIGCONT)
    new, _ = group.wait_failover(old, timeout_s=60)
    group.bring_back(old)
    group.wait_settled(new)
    return outcome


def _enqueue_then_lose_the_primary(group: SentinelGroup, runtime: Runtime) -> str | Unavailable:
    """An enqueue, then the primary lost with it (``_lose_the_primary_after``)."""

    def enqueue() -> str | Unavailable:
        try:
            return runtime.producer.enqueue(MESSAGE, idempotency_key="the-tail")
        except Unavailable as refused:
            return refused

    return _lose_the_primary_after(group, enqueue)


def _replica_ports(group: SentinelGroup) -> list[int]:
    primary = group.primary_port()
    return [node.port for node in group.nodes if node.port != primary]


def test_without_min_replicas_an_enqueue_that_returned_can_be_lost_in_a_failover(group):
    """REDIS_MIN_REPLICAS=0: the enqueue returns before any replica has the job, and the
    failover loses it (what the setting is for)."""
    runtime = runtime_of(group)
    returned = _enqueue_then_lose_the_primary(group, runtime)
    assert isinstance(returned, str)
    assert wait_for(lambda: _reads(runtime), timeout_s=10)
    assert runtime.jobs.get(returned) is None  # acknowledged, then lost
    runtime.close()


def test_with_min_replicas_an_enqueue_no_replica_took_raises_unavailable(group):
    """REDIS_MIN_REPLICAS=1: the same enqueue raises Unavailable (ReplicasMissing) within
    REDIS_TIMEOUT_S instead of returning: no job whose enqueue returned is lost."""
    runtime = Runtime(
        Settings(
            redis_url=group.url, redis_timeout_s=TIMEOUT_S, redis_min_replicas=1, _env_file=None
        ),
        fail_fast=True,
    )
    refused = _enqueue_then_lose_the_primary(group, runtime)
    assert isinstance(refused, ReplicasMissing)
    kept = runtime.producer.enqueue(MESSAGE, idempotency_key="kept")  # replicas back: returns
    old = group.kill_primary()
    new, _ = group.wait_failover(old, timeout_s=60)
    assert wait_for(lambda: _reads(runtime), timeout_s=10)
    assert runtime.jobs.get(kept) is not None  # returned, so on a replica: survives the kill
    group.bring_back(old)
    group.wait_settled(new)
    runtime.close()


def test_a_barrier_on_the_new_primary_vouches_for_no_write_the_old_one_took(group):
    """A write the old primary took before its replicas had it, then a failover: a barrier run
    on the new primary (a client's retry lands there) finds its replicas in step, but not the
    write, and raises WriteLost: for an enqueue's job and for a begin's claim alike. What did
    reach the new primary passes."""
    runtime = runtime_of(group)
    kept = runtime.producer.enqueue(MESSAGE, idempotency_key="kept")
    job = runtime.jobs.get(kept)
    group.wait_settled(group.primary_port())
    timing = runtime.timing
    execution = Execution(kept, job.gen, holder="the-old-primary's")

    def enqueue_and_begin() -> str:
        tail = runtime.producer.enqueue(MESSAGE, idempotency_key="the-tail")
        opening = Opening(execution, timing.lease_s, timing.probe_interval_s, runtime.rate_limit)
        assert runtime.transitions.open(opening, now=time.time()).verdict is Verdict.GO
        return tail

    tail = _lose_the_primary_after(group, enqueue_and_begin)
    assert wait_for(lambda: _reads(runtime), timeout_s=10)
    barrier = Replication(runtime.keys, replicas=1, timeout_s=TIMEOUT_S)
    with pytest.raises(WriteLost):
        barrier.confirm(runtime.redis, barrier.jobs([tail]))
    with pytest.raises(WriteLost):  # a batch's first job known from before, the next one lost
        barrier.confirm(runtime.redis, barrier.jobs([kept, tail]))
    with pytest.raises(WriteLost):
        barrier.confirm_claim(runtime.redis, execution, job)
    barrier.confirm(runtime.redis, barrier.jobs([kept, kept]))
    taken = Execution(kept, job.gen, holder="the-new-primary's")
    again = Opening(taken, timing.lease_s, timing.probe_interval_s, runtime.rate_limit)
    assert runtime.transitions.open(again, now=time.time()).verdict is Verdict.GO
    barrier.confirm_claim(runtime.redis, taken, job)
    # The call not made: its rate-limit slot and pair given back, for the tests after this one.
    runtime.transitions.retry(taken, now=time.time(), delay_s=0, action="replicas_wait")
    runtime.close()


def _reads(runtime: Runtime) -> bool:
    try:
        return bool(runtime.redis.ping())
    except redis.RedisError:
        return False


# runtime.delivery's Gateway connections live as long as a worker process: they have no close.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_with_min_replicas_a_worker_calls_only_once_a_replica_has_its_writes(group, sandbox):
    """REDIS_MIN_REPLICAS=1 and no replica taking writes: the worker puts the job back instead
    of calling, with no attempt used, no reschedule counted (an outage of the replicas must not
    use up the job's cap) and its rate-limit slot given back; with the replicas back, the same
    job is sent."""
    settings = Settings(
        redis_url=group.url,
        redis_timeout_s=TIMEOUT_S,
        redis_min_replicas=1,
        api_base_url=sandbox.url,
        api_key=API_KEY,
        sandbox=True,
        _env_file=None,
    )
    runtime = Runtime(settings)
    job_id = runtime.producer.enqueue(MESSAGE)
    replicas = [group.node(port) for port in _replica_ports(group)]
    for node in replicas:
        node.signal(signal.SIGSTOP)
    try:
        with redis.Redis(port=group.primary_port()) as primary:
            primary.client_kill_filter(_type="replica")
        gen = runtime.jobs.get(job_id).gen
        assert runtime.delivery.deliver(job_id, gen) is Result.WAITING
        assert sandbox.stats()["requests"] == 0
        job = runtime.jobs.get(job_id)
        assert (job.attempts, job.reschedules) == (0, 0)
        assert runtime.redis.zcard(runtime.keys.window(job.account, "sec")) == 0
    finally:
        for node in replicas:
            node.signal(signal.SIGCONT)
    group.wait_settled(group.primary_port())
    job = wait_for(lambda: _due(runtime, job_id), timeout_s=10, what="the job due again")
    assert runtime.delivery.deliver(job_id, job.gen) is Result.SENT
    assert sandbox.stats()["accepted"] == 1
    runtime.close()


def _due(runtime: Runtime, job_id: str) -> Job | None:
    job = runtime.jobs.get(job_id)
    if job is None or job.state not in {JobState.QUEUED, JobState.SCHEDULED}:
        return None
    return job if time.time() > (job.due_at or 0) else None
