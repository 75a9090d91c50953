"""Capacity: bytes of Redis per pending job and per settled (sent) record.

Enqueues N jobs (a text message of ~60 characters, as a typical one-time code) into a private
redis-server and reads INFO memory's used_memory before and after; then settles every one as
sent (begin + mark_sent, as a worker does) and reads it again; the retention TTLs are then set.
MEMORY USAGE of one job's keys is shown as a cross-check.

    .venv/bin/python bench/capacity.py [--jobs 10000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import redis

from worker.dev.localredis import LocalRedis
from worker.store.claims import Execution
from worker.store.jobs import JobStore
from worker.store.keys import Keys
from worker.store.ratelimit import RateLimit
from worker.store.records import NewJob
from worker.store.transitions import Transitions

BODY = {
    "to": "905321234567",
    "type": "text",
    "text": {"body": "Your code is 482913. It expires in 10 minutes."},
}


def used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def key_bytes(client: redis.Redis, keys: Keys, job_id: str) -> int:
    names = [keys.job(job_id), keys.history(job_id), keys.idempotency("default", job_id)]
    names.append(keys.ledger("default", job_id))
    return sum(int(client.memory_usage(name) or 0) for name in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = LocalRedis(Path(folder))
        server.start()
        try:
            client = redis.Redis.from_url(server.url, decode_responses=True)
            keys = Keys()
            store = JobStore(client, keys)
            transitions = Transitions(client, keys, retention_s=604800)
            rate = RateLimit(per_sec=10**6, per_min=10**8)
            before = used(client)
            now = time.time()
            ids = [f"{n:032x}" for n in range(args.jobs)]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                store.add(
                    [
                        NewJob(id=i, account="default", key=i, message=BODY, due_at=now)
                        for i in chunk
                    ],
                    now=now,
                )
            pending = used(client)
            pending_sample = key_bytes(client, keys, ids[0])
            for job_id in ids:
                execution = Execution(job_id, 1, "bench")
                transitions.begin(
                    execution, now=time.time(), lease_s=30, probe_interval_s=30, rate=rate
                )
                transitions.mark_sent(
                    execution,
                    "wamid.HBgLOTA1MzIxMjM0NTY3FQIAERgSQjYxRjBBQkM5RDI1NkE1OTc2AA==",
                    now=time.time(),
                )
            client.delete(keys.window("default", "sec"), keys.window("default", "min"))
            settled = used(client)
            settled_sample = key_bytes(client, keys, ids[0])
            n = args.jobs
            print(f"jobs: {n}")
            print(
                f"pending: {(pending - before) / n:.0f} B/job (INFO used_memory); "
                f"MEMORY USAGE of one job's keys {pending_sample} B"
            )
            print(
                f"sent (kept for the retention): {(settled - before) / n:.0f} B/job; "
                f"MEMORY USAGE of one job's keys {settled_sample} B"
            )
            client.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
