"""The workers: each worker command's heartbeat in Redis, with what it is (host, pid, pool,
threads) and how many jobs it sent in the last minute; ``msgworker workers`` lists them.

A worker counts as alive while its last heartbeat is at most ``ALIVE_S`` old; it beats three
times as often. One gone for a hundred of those is forgotten.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import redis

from worker.store.keys import Keys

ALIVE_S = 30
HEARTBEAT_S = ALIVE_S / 3
FORGOTTEN_S = 100 * ALIVE_S
MINUTE_S = 60.0


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker said of itself at its last heartbeat."""

    name: str
    host: str
    pid: int
    pool: str
    concurrency: int
    started_at: float
    last_beat: float = 0.0
    sent_last_minute: int = 0

    def alive(self, now: float) -> bool:
        return now - self.last_beat <= ALIVE_S


class SendsLastMinute:
    """The sends of the last minute, from a running total sampled at each heartbeat."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float]] = deque()

    def update(self, now: float, total: float) -> int:
        self._samples.append((now, total))
        while len(self._samples) > 1 and self._samples[1][0] <= now - MINUTE_S:
            self._samples.popleft()
        return max(0, round(total - self._samples[0][1]))


class Heartbeat:
    """A worker command's sign of life in Redis, counted by ``msgworker status`` and listed by
    ``msgworker workers``; ``sent_total`` gives the jobs this worker has sent since it started."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        info: WorkerInfo,
        sent_total: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self._redis = client
        self._keys = keys
        self.info = info
        self._sent_total = sent_total
        self._sends = SendsLastMinute()

    @property
    def name(self) -> str:
        return self.info.name

    def beat(self, now: float) -> None:
        sent = self._sends.update(now, self._sent_total())
        record = {**asdict(self.info), "last_beat": now, "sent_last_minute": sent}
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(self._keys.workers, {self.name: now})
        pipe.hset(self._keys.worker_info, self.name, json.dumps(record))
        gone = self._redis.zrangebyscore(self._keys.workers, "-inf", now - FORGOTTEN_S)
        if gone:
            pipe.zrem(self._keys.workers, *gone)
            pipe.hdel(self._keys.worker_info, *gone)
        pipe.execute()

    def stop(self) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrem(self._keys.workers, self.name)
        pipe.hdel(self._keys.worker_info, self.name)
        pipe.execute()


def list_workers(client: redis.Redis, keys: Keys) -> list[WorkerInfo]:
    """Every worker that beat within the last ``FORGOTTEN_S``, the latest beat first; one whose
    record does not parse (written by another version) is listed by name and beat only."""
    raw_beats: list[tuple[Any, Any]] = client.zrevrange(keys.workers, 0, -1, withscores=True)  # type: ignore[assignment]
    beats = [(str(name), float(beat)) for name, beat in raw_beats]
    if not beats:
        return []
    records = client.hmget(keys.worker_info, [name for name, _ in beats])
    found = []
    for (name, beat), raw in zip(beats, records, strict=True):
        try:
            info = WorkerInfo(**{**json.loads(str(raw)), "last_beat": beat})
        except (TypeError, ValueError):
            info = WorkerInfo(name, "", 0, "", 0, 0.0, last_beat=beat)
        found.append(info)
    return found
