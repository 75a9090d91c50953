"""Records written by older versions, brought in line with today's once per deployment.

Versions before retention gave every job's record, history and idempotency entry a seven-day
expiry at enqueue, pending or not. A worker starting on such data removes that expiry from every
job not yet sent, so nothing pending can still age out; a marker key makes it a one-time pass.

Versions before lanes kept one schedule for every account (``Keys.legacy_due``). A worker moves
its entries into the accounts' lanes when it starts, and its pump keeps doing so while a worker
of an older version may still be adding to it (a rolling upgrade).
"""

from __future__ import annotations

from typing import cast

import redis

from worker.store.declaration import text
from worker.store.keys import Keys, lane_of
from worker.store.protocol import SPLIT_SCHEDULE
from worker.store.scripts import load_script
from worker.store.states import JobState

CHUNK = 1000


def keep_pending_jobs(client: redis.Redis, keys: Keys, *, chunk: int = CHUNK) -> int:
    """Remove the old expiry from every job not yet sent; returns how many were kept."""
    if client.exists(keys.pending_kept):
        return 0
    kept = 0
    batch: list[str] = []
    for key in client.scan_iter(match=keys.job("*"), count=chunk):
        name = key.decode() if isinstance(key, bytes) else str(key)
        if not name.endswith(":history"):
            batch.append(name)
        if len(batch) >= chunk:
            kept += _keep(client, keys, batch)
            batch = []
    kept += _keep(client, keys, batch)
    client.set(keys.pending_kept, "1")
    return kept


def _keep(client: redis.Redis, keys: Keys, job_keys: list[str]) -> int:
    reads = client.pipeline(transaction=False)
    for key in job_keys:
        reads.hmget(key, "id", "state", "account", "key")
    writes = client.pipeline(transaction=False)
    kept = 0
    for fields in reads.execute():
        job_id, state, account, key = (f.decode() if isinstance(f, bytes) else f for f in fields)
        if not (job_id and state and account and key) or state == JobState.SENT:
            continue
        writes.persist(keys.job(job_id))
        writes.persist(keys.history(job_id))
        writes.persist(keys.idempotency(account, key))
        kept += 1
    writes.execute()
    return kept


def split_legacy_schedule(client: redis.Redis, keys: Keys, *, chunk: int = CHUNK) -> int:
    """Move the one schedule of older versions into the accounts' lanes; returns how many moved.

    A chunk at a time: its entries' jobs read, then each entry moved atomically
    (``split_schedule.lua``, which checks what was read): a job is never in both or neither.
    """
    if not client.exists(keys.legacy_due):
        return 0
    split = load_script(client, SPLIT_SCHEDULE)
    fixed = {"legacy_due": keys.legacy_due, "scheduled_accounts": keys.scheduled_accounts}
    total, left = 0, 1
    while left:
        entries = cast("list[bytes]", client.zrange(keys.legacy_due, 0, chunk - 1))
        members = [text(m) for m in entries]
        reads = client.pipeline(transaction=False)
        for member in members:
            reads.hmget(keys.job(_job_id(member)), "account", "priority")
        each_key, each = [], []
        for member, fields in zip(members, reads.execute(), strict=True):
            account, priority = (text(field or b"") for field in fields)
            lane = keys.due(account, lane_of(priority)) if account else keys.legacy_due
            each_key.append({"job": keys.job(_job_id(member)), "due": lane})
            each.append({"member": member, "account": account, "priority": priority})
        reply = SPLIT_SCHEDULE.fields(
            split(
                keys=SPLIT_SCHEDULE.key_list(fixed, each=each_key),
                args=SPLIT_SCHEDULE.arguments({}, each=each),
            )
        )
        total, left = total + int(reply["moved"]), int(reply["left"])
    return total


def _job_id(member: str) -> str:
    """The job id of an old schedule's entry: ``<id>|<gen>``, or all id for an entry written
    without a generation (``schedule.parse_member`` takes only the first form)."""
    return member.rpartition("|")[0] or member
