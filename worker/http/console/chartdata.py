"""The figures behind the overview's chart: per 10 seconds, the answers settled by code.

The workers count every answer they settle, by code, per second (``stats:answers:<second>``:
``OK`` for a message sent, and each code that rescheduled, retried, halted or parked a job, a
delivery's ``failed`` that parked one included), kept two minutes; that does not say what the
last 15 minutes looked like, so the serve process folds them, every 10 seconds, into one small
hash per 10-second bucket, kept 16 minutes. Any number of serve processes may do so: each folds
each bucket again for 30 s after it ends, so counts that come late are not lost, and a bucket
folded again keeps what it counted. Started, it first folds the two minutes the counts still
cover.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

import redis

from worker.logs import get_logger
from worker.outcome import OK
from worker.store.keys import Keys

log = get_logger(__name__)
BUCKET_S = 10
WINDOW_S = 15 * 60
BUCKETS = WINDOW_S // BUCKET_S
KEEP_S = WINDOW_S + 60
# How far back the per-second counts reach (they live two minutes): folded at start.
SOURCE_S = 110
# Each pass folds again the buckets finished this long ago: a send counted into a bucket after
# its first fold (a worker's clock behind serve's, a finish retried across a failover) still
# lands, and every serve process ends with the same figures for it.
REFOLD_S = 30
SENT = OK


@dataclass(frozen=True)
class Bucket:
    start: int  # Unix seconds
    answers: dict[str, int]  # SENT and the other codes answered, with how many

    @property
    def sends_per_s(self) -> float:
        return self.answers.get(SENT, 0) / BUCKET_S


def bucket_of(at: float) -> int:
    return int(at) // BUCKET_S * BUCKET_S


def fold(client: redis.Redis, keys: Keys, start: int) -> None:
    """Write the figures of the bucket from ``start``: its seconds' answers, summed by code.

    Folded again, a bucket keeps the larger of each figure: a second's counts only lose what the
    bucket counted (they expire), while an answer counted late adds to them."""
    key = keys.console_chart(start)
    pipe = client.pipeline(transaction=False)
    for second in range(start, start + BUCKET_S):
        pipe.hgetall(keys.answers_in_second(second))
    pipe.hgetall(key)
    *seconds, counted = pipe.execute()
    answers: Counter[str] = Counter({SENT: 0})
    for by_code in seconds:
        answers.update({str(code): int(n) for code, n in by_code.items()})
    for code, n in counted.items():
        answers[str(code)] = max(answers[str(code)], int(n))
    pipe = client.pipeline(transaction=True)
    pipe.delete(key)
    pipe.hset(key, mapping={code: n for code, n in answers.items() if n or code == SENT})
    pipe.expire(key, KEEP_S)
    pipe.execute()


def read_buckets(client: redis.Redis, keys: Keys, *, now: float) -> list[Bucket]:
    """The last 15 minutes' buckets, oldest first (one not folded yet: no answers)."""
    last = bucket_of(now) - BUCKET_S
    starts = range(last - (BUCKETS - 1) * BUCKET_S, last + 1, BUCKET_S)
    pipe = client.pipeline(transaction=False)
    for start in starts:
        pipe.hgetall(keys.console_chart(start))
    return [
        Bucket(start, {str(code): int(n) for code, n in raw.items()})
        for start, raw in zip(starts, pipe.execute(), strict=True)
    ]


class ChartSampler:
    """Folds each finished 10-second bucket, in a thread of the serve process while it serves."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys
        self._started = threading.Event()
        self._stopping = threading.Event()

    def start(self) -> None:
        """Start folding (once per sampler; later calls do nothing)."""
        if self._started.is_set():
            return
        self._started.set()
        threading.Thread(target=self._run, name="console-chart", daemon=True).start()

    def stop(self) -> None:
        """Stop folding after the bucket under way."""
        self._stopping.set()

    def _run(self) -> None:
        done = bucket_of(time.time() - SOURCE_S) - BUCKET_S
        while True:
            done = self.fold_finished(done, now=time.time())
            next_bucket_s = bucket_of(time.time()) + BUCKET_S + 1 - time.time()
            if self._stopping.wait(max(0.5, next_bucket_s)):
                return

    def fold_finished(self, done: int, *, now: float) -> int:
        """Fold the buckets finished by ``now`` after ``done`` (the last bucket folded), and
        again those of the last ``REFOLD_S``; returns the new last one."""
        finished = bucket_of(now) - BUCKET_S
        first = min(done, finished - REFOLD_S) + BUCKET_S
        for start in range(first, finished + 1, BUCKET_S):
            try:
                fold(self._redis, self._keys, start)
            except redis.RedisError as exc:  # Redis away: fold what is still there when back
                log.warning("console.chart_not_folded", error=type(exc).__name__)
                return max(done, bucket_of(now - SOURCE_S) - BUCKET_S)
            except Exception:  # a bucket that cannot be folded: the thread goes on with the next
                log.exception("console.chart_bucket_not_folded", bucket=start)
            done = max(done, start)
        return done
