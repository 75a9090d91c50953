"""The Celery app's dispatcher (how the pump's dispatches become broker messages) and the broker
depth the pump reads, against a real Redis broker: the messages are read back from the queue."""

from __future__ import annotations

import base64
import json

import redis
from celery.utils.quorum_queues import detect_quorum_queues

from tests.support.processes import wait_for
from worker.send.pace import MAX_GROUP, CallPace
from worker.service.app import broker_depth, create_app, dispatcher
from worker.service.broker import RejectingConsumer
from worker.settings import Settings

QUEUE = "q"


def dispatches(n: int, accounts: int = 1) -> list[tuple[str, int, str, str, str]]:
    """n dispatches in slot order, their accounts taking turns."""
    return [(f"j{i}", 1, f"a{i % accounts}", f"k{i}", "") for i in range(n)]


def published(client: redis.Redis) -> list[tuple[str, list]]:
    """The broker messages in the queue, oldest first, taken off it: (task name, args)."""
    messages = []
    while (raw := client.rpop(QUEUE)) is not None:
        envelope = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        messages.append((envelope["headers"]["task"], args))
    return messages


def test_dispatches_are_grouped_only_when_there_is_more_than_one_per_consumer(redis_url):
    """A long queue goes out a few jobs per broker message; a short one, one job per message."""
    app = create_app(Settings(broker_url=redis_url, _env_file=None))
    client = redis.Redis.from_url(redis_url)
    dispatch = dispatcher(app, QUEUE, consumers=4)
    dispatch(dispatches(4))
    assert [name for name, _ in published(client)] == ["msgworker.deliver"] * 4
    dispatch(dispatches(100))
    sent = published(client)
    assert {name for name, _ in sent} == {"msgworker.deliver_many"}
    groups = [args[0] for _, args in sent]
    assert max(len(g) for g in groups) <= MAX_GROUP
    assert sorted(d[0] for g in groups for d in g) == sorted(f"j{i}" for i in range(100))


def test_the_jobs_are_dealt_out_to_at_least_a_group_per_account(redis_url):
    """Forty dispatches of ten accounts in slot order, calls quick: ten groups of four, each
    taking every tenth dispatch, so a group's jobs come due one account's slot gap apart (a
    thread that took four jobs of four accounts due back to back would begin the last ones late)."""
    app = create_app(Settings(broker_url=redis_url, _env_file=None))
    client = redis.Redis.from_url(redis_url)
    pace = CallPace()
    pace.record(0.002)
    dispatcher(app, QUEUE, consumers=100, pace=pace)(dispatches(40, accounts=10))
    groups = [[d[0] for d in args[0]] for _, args in published(client)]
    assert groups == [[f"j{first + 10 * n}" for n in range(4)] for first in range(10)]


def test_quick_calls_group_a_short_queue_for_many_consumers(redis_url):
    """With this process's calls answered within milliseconds, even 2 x MAX_GROUP dispatches
    for 100 consumers go out a full group per message; before any call, one per message."""
    app = create_app(Settings(broker_url=redis_url, _env_file=None))
    client = redis.Redis.from_url(redis_url)
    pace = CallPace()
    dispatch = dispatcher(app, QUEUE, consumers=100, pace=pace)
    dispatch(dispatches(2 * MAX_GROUP))
    assert len(published(client)) == 2 * MAX_GROUP
    pace.record(0.002)
    dispatch(dispatches(2 * MAX_GROUP))
    assert [len(args[0]) for _, args in published(client)] == [MAX_GROUP, MAX_GROUP]


def test_the_broker_depth_keeps_its_connection_and_counts_again_after_a_restart(own_redis):
    """Asked every second by the pump: one request a call on one connection, not a connection
    each time; after Redis went away and came back, it counts again."""
    app = create_app(Settings(broker_url=own_redis.url, _env_file=None))
    depth = broker_depth(app, "q")
    client = redis.Redis.from_url(own_redis.url)
    client.rpush("q", "m1", "m2")
    assert depth() == 2
    connections = client.info("stats")["total_connections_received"]
    assert [depth() for _ in range(5)] == [2] * 5
    assert client.info("stats")["total_connections_received"] == connections
    client.close()

    own_redis.stop()
    own_redis.start()
    redis.Redis.from_url(own_redis.url).rpush("q", "m3")

    def counted() -> int | None:
        try:
            return int(depth())
        except Exception:  # noqa: BLE001 - a lost connection fails one call, whatever it raises
            return None

    assert wait_for(counted, what="counting again") == 1


def test_a_rabbitmq_broker_gets_a_quorum_queue_confirmed_publishes_and_per_consumer_qos():
    """amqp://: the queue is declared quorum, publishes wait for confirms, Celery sees the quorum
    queue (so no global QoS); a Redis broker keeps its own options."""
    on_rabbit = create_app(
        Settings(
            broker_url="amqp://guest:guest@localhost//",
            redis_url="redis://unused:1/0",
            _env_file=None,
        )
    )
    queue = on_rabbit.amqp.queues["messages"]
    assert queue.queue_arguments == {"x-queue-type": "quorum"}
    assert on_rabbit.conf.broker_transport_options == {"confirm_publish": True}
    assert detect_quorum_queues(on_rabbit, "amqp") == (True, "messages")
    on_redis = create_app(Settings(broker_url="redis://unused:1/0", _env_file=None))
    assert not on_redis.amqp.queues["messages"].queue_arguments
    assert "visibility_timeout" in on_redis.conf.broker_transport_options


def test_the_consumer_leaves_out_native_delayed_delivery():
    """No ETA task is ever published: the consumer declares no delayed-delivery exchanges."""
    steps = RejectingConsumer.Blueprint.default_steps
    assert not [step for step in steps if "delayed_delivery" in step]
    assert "celery.worker.consumer.tasks:Tasks" in steps
