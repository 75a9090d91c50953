"""The chart's figures in Redis: a 10-second bucket folds the sends counted per second and the
dead letters parked in it by code; the last 15 minutes read back oldest first."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

import redis

from tests.support.console import PASSWORD
from tests.support.deadletters import dead_letter
from tests.support.processes import wait_for
from worker.http.app import create_app
from worker.http.console.chartdata import (
    BUCKET_S,
    BUCKETS,
    OTHER,
    SENT,
    ChartSampler,
    fold,
    read_buckets,
)
from worker.settings import Settings
from worker.store.keys import Keys
from worker.store.restore import Restore

KEYS = Keys("chart:")
START = 1_790_000_000  # a bucket's start: a multiple of 10 s


def test_a_bucket_folds_sends_and_parks_by_code(redis_client):
    """7 sends over two seconds of the bucket, one after it; 2 BILL_001 and 1 GW_001 parked in
    it, one BILL_001 after it, and a record that does not parse: the bucket says OK 7,
    BILL_001 2, GW_001 1, other 1, and is read back as the newest of the last 15 minutes."""
    redis_client.set(KEYS.sent_in_second(START), 3)
    redis_client.set(KEYS.sent_in_second(START + 9), 4)
    redis_client.set(KEYS.sent_in_second(START + 10), 50)
    letters = [
        replace(dead_letter(0), parked_at=START + 1.5),
        replace(dead_letter(1), parked_at=START + 9.9),
        replace(dead_letter(2, code="GW_001"), parked_at=START + 5),
        replace(dead_letter(3), parked_at=START + 10),
        replace(dead_letter(4), parked_at=START + 2),
    ]
    Restore(redis_client, KEYS).put_back(letters)
    redis_client.set(KEYS.dead_letter(letters[4].id), "not json")

    fold(redis_client, KEYS, START)

    buckets = read_buckets(redis_client, KEYS, now=START + 10.5)
    assert len(buckets) == BUCKETS
    assert buckets[-1].start == START
    assert buckets[-1].answers == {SENT: 7, "BILL_001": 2, "GW_001": 1, OTHER: 1}
    assert buckets[-1].sends_per_s == 0.7
    assert all(bucket.answers == {} for bucket in buckets[:-1])
    assert 0 < redis_client.ttl(KEYS.console_chart(START)) <= 16 * 60


def test_sends_counted_after_their_bucket_was_folded_still_land_in_it(redis_client):
    """A bucket is folded a second after it ends; a send counted into it later (a worker's
    clock behind serve's, a finish retried across a failover) is in it after the next pass,
    and so are the figures of whichever serve process folds it last."""
    sampler = ChartSampler(redis_client, KEYS)
    redis_client.set(KEYS.sent_in_second(START + 9), 4)
    done = sampler.fold_finished(START - BUCKET_S, now=START + BUCKET_S + 1)
    assert read_buckets(redis_client, KEYS, now=START + 11)[-1].answers == {SENT: 4}

    redis_client.incrby(KEYS.sent_in_second(START + 9), 3)
    sampler.fold_finished(done, now=START + 2 * BUCKET_S + 1)

    assert read_buckets(redis_client, KEYS, now=START + 21)[-2].answers == {SENT: 7}


def test_a_bucket_that_cannot_be_folded_does_not_stop_the_ones_after_it(redis_client, redis_url):
    """A dead letter whose bytes are not UTF-8 (no version writes one, but Redis holds what it
    is given) makes its bucket unreadable: the pass logs it and folds the next bucket's sends."""
    letter = replace(dead_letter(0), parked_at=START + 1)
    Restore(redis_client, KEYS).put_back([letter])
    raw = redis.Redis.from_url(redis_url)
    raw.set(KEYS.dead_letter(letter.id), b"\xff\xfe")
    raw.close()
    redis_client.set(KEYS.sent_in_second(START + BUCKET_S), 5)

    done = ChartSampler(redis_client, KEYS).fold_finished(START - BUCKET_S, now=START + 21)

    assert done == START + BUCKET_S
    assert read_buckets(redis_client, KEYS, now=START + 21)[-1].answers == {SENT: 5}


def test_a_bucket_folded_again_keeps_what_it_counted(redis_client):
    """A dead letter replayed (out of the index) after its bucket's first fold: folding the
    bucket again (the next passes, another serve process starting) still counts it; a send
    counted late is added."""
    redis_client.set(KEYS.sent_in_second(START + 3), 2)
    letter = replace(dead_letter(0), parked_at=START + 4)
    Restore(redis_client, KEYS).put_back([letter])
    fold(redis_client, KEYS, START)

    redis_client.zrem(KEYS.dead_letter_index, letter.id)
    redis_client.set(KEYS.sent_in_second(START + 9), 1)
    fold(redis_client, KEYS, START)

    answers = read_buckets(redis_client, KEYS, now=START + 11)[-1].answers
    assert answers == {SENT: 3, "BILL_001": 1}


def test_a_bucket_reads_at_most_its_cap_of_dead_letters(redis_client, monkeypatch):
    """Past the cap the parked letters are counted, not read: with a cap of 2 and 5 parked, 2
    are read by code and 3 counted as other; the total stays 5."""
    monkeypatch.setattr("worker.http.console.chartdata.PARKED_READ_MAX", 2)
    letters = [replace(dead_letter(n), parked_at=START + 1 + n) for n in range(5)]
    Restore(redis_client, KEYS).put_back(letters)

    fold(redis_client, KEYS, START)

    assert read_buckets(redis_client, KEYS, now=START + 10.5)[-1].answers == {
        SENT: 0,
        "BILL_001": 2,
        OTHER: 3,
    }


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
