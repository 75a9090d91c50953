"""The chart's figures in Redis: a 10-second bucket folds the sends counted per second and the
dead letters parked in it by code; the last 15 minutes read back oldest first."""

from __future__ import annotations

from dataclasses import replace

from tests.support.deadletters import dead_letter
from worker.http.console.chartdata import BUCKETS, OTHER, SENT, fold, read_buckets
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
