"""The chart's figures in Redis: a 10-second bucket folds the answers counted per second by
code; the last 15 minutes read back oldest first."""

from __future__ import annotations

import asyncio
import threading

import redis

from tests.support.console import PASSWORD
from tests.support.processes import wait_for
from worker.http.app import create_app
from worker.http.console.chartdata import (
    BUCKET_S,
    BUCKETS,
    SENT,
    ChartSampler,
    fold,
    read_buckets,
)
from worker.settings import Settings
from worker.store.keys import Keys

KEYS = Keys("chart:")
START = 1_790_000_000  # a bucket's start: a multiple of 10 s


def count(client, second: int, code: str, n: int) -> None:
    """``n`` answers with ``code`` in ``second``, as the settlement scripts count them."""
    client.hincrby(KEYS.answers_in_second(second), code, n)


def test_a_bucket_folds_the_answers_of_its_seconds_by_code(redis_client):
    """7 sends over two seconds of the bucket, 50 after it; a RATE_001, two HTTP_502 and a
    BILL_001 in it: the bucket says OK 7, RATE_001 1, HTTP_502 2, BILL_001 1, and is read back
    as the newest of the last 15 minutes."""
    count(redis_client, START, SENT, 3)
    count(redis_client, START + 9, SENT, 4)
    count(redis_client, START + 10, SENT, 50)
    count(redis_client, START + 2, "RATE_001", 1)
    count(redis_client, START + 2, "HTTP_502", 1)
    count(redis_client, START + 7, "HTTP_502", 1)
    count(redis_client, START + 9, "BILL_001", 1)
    count(redis_client, START + 10, "BILL_001", 1)

    fold(redis_client, KEYS, START)

    buckets = read_buckets(redis_client, KEYS, now=START + 10.5)
    assert len(buckets) == BUCKETS
    assert buckets[-1].start == START
    assert buckets[-1].answers == {SENT: 7, "RATE_001": 1, "HTTP_502": 2, "BILL_001": 1}
    assert buckets[-1].sends_per_s == 0.7
    assert all(bucket.answers == {} for bucket in buckets[:-1])
    assert 0 < redis_client.ttl(KEYS.console_chart(START)) <= 16 * 60


def test_a_bucket_without_sends_says_so(redis_client):
    """Only retried answers in the bucket: OK 0 beside them (the chart's send rate is 0)."""
    count(redis_client, START + 1, "TIMEOUT", 2)
    fold(redis_client, KEYS, START)
    assert read_buckets(redis_client, KEYS, now=START + 11)[-1].answers == {SENT: 0, "TIMEOUT": 2}


def test_answers_counted_after_their_bucket_was_folded_still_land_in_it(redis_client):
    """A bucket is folded a second after it ends; an answer counted into it later (a worker's
    clock behind serve's, a finish retried across a failover) is in it after the next pass,
    and so are the figures of whichever serve process folds it last."""
    sampler = ChartSampler(redis_client, KEYS)
    count(redis_client, START + 9, SENT, 4)
    done = sampler.fold_finished(START - BUCKET_S, now=START + BUCKET_S + 1)
    assert read_buckets(redis_client, KEYS, now=START + 11)[-1].answers == {SENT: 4}

    count(redis_client, START + 9, SENT, 3)
    count(redis_client, START + 9, "HTTP_503", 1)
    sampler.fold_finished(done, now=START + 2 * BUCKET_S + 1)

    assert read_buckets(redis_client, KEYS, now=START + 21)[-2].answers == {SENT: 7, "HTTP_503": 1}


def test_a_bucket_that_cannot_be_folded_does_not_stop_the_ones_after_it(redis_client, redis_url):
    """A count whose code is not UTF-8 (no version writes one, but Redis holds what it is
    given) makes its bucket unreadable: the pass logs it and folds the next bucket's sends."""
    raw = redis.Redis.from_url(redis_url)
    raw.hset(KEYS.answers_in_second(START + 1), b"\xff\xfe", 1)
    raw.close()
    count(redis_client, START + BUCKET_S, SENT, 5)

    done = ChartSampler(redis_client, KEYS).fold_finished(START - BUCKET_S, now=START + 21)

    assert done == START + BUCKET_S
    assert read_buckets(redis_client, KEYS, now=START + 21)[-1].answers == {SENT: 5}


def test_a_bucket_folded_again_keeps_what_it_counted(redis_client):
    """A second's counts gone (expired) after the bucket's first fold: folding the bucket again
    (the next passes, another serve process starting) still counts them; an answer counted
    late is added."""
    count(redis_client, START + 3, SENT, 2)
    count(redis_client, START + 4, "BILL_001", 1)
    fold(redis_client, KEYS, START)

    redis_client.delete(KEYS.answers_in_second(START + 4))
    count(redis_client, START + 9, SENT, 1)
    fold(redis_client, KEYS, START)

    answers = read_buckets(redis_client, KEYS, now=START + 11)[-1].answers
    assert answers == {SENT: 3, "BILL_001": 1}


def chart_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "console-chart" and t.is_alive()]


def test_the_chart_is_folded_while_the_service_serves_not_when_an_app_is_built(redis_url):
    """Building the app starts no thread; serving (the app's lifespan) starts one folding
    thread, and shutting down stops it."""
    assert chart_threads() == []
    app = create_app(Settings(broker_url=redis_url, console_password=PASSWORD, _env_file=None))
    assert chart_threads() == []

    async def serve() -> int:
        async with app.router.lifespan_context(app):
            return len(chart_threads())

    assert asyncio.run(serve()) == 1
    wait_for(lambda: not chart_threads(), timeout_s=5, what="the chart thread to stop")
