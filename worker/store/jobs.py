"""Writing new jobs (``enqueue.lua``: one round trip, send-once per idempotency key) and reading
a job's record back. Its transitions are ``worker.store.transitions``'.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import redis
from redis.exceptions import OutOfMemoryError, ResponseError

from worker.errors import StoreFull
from worker.store.declaration import text
from worker.store.history import history_event
from worker.store.keys import Keys, lane_of, template_field
from worker.store.protocol import ENQUEUE
from worker.store.records import Job, NewJob
from worker.store.scripts import load_script
from worker.store.states import JobState


def is_out_of_memory(exc: ResponseError) -> bool:
    """Whether Redis refused a write because maxmemory is reached."""
    return isinstance(exc, OutOfMemoryError) or "OOM command not allowed" in str(exc)


# enqueue.lua's batch key arguments when there is no batch key.
NO_BATCH: dict[str, Any] = {"batch_accounts": "", "batch_key": "", "batch_keep_ms": 0}


def enqueue_call(
    jobs: list[NewJob], *, keys: Keys, now: float, batch: Mapping[str, Any] = NO_BATCH
) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of ``enqueue.lua`` for these jobs (shared by the blocking and the asyncio
    store)."""
    job_keys = [
        {
            "idempotency": keys.idempotency(job.account, job.key),
            "job": keys.job(job.id),
            "history": keys.history(job.id),
            "due": keys.due(job.account, lane_of(job.priority)),
        }
        for job in jobs
    ]
    fixed = {
        "batch": keys.batch(batch["batch_accounts"], batch["batch_key"]),
        "enqueued_count": keys.enqueued_count,
        "scheduled_accounts": keys.scheduled_accounts,
    }
    each = []
    for job in jobs:
        state = JobState.SCHEDULED if job.due_at > now else JobState.QUEUED
        event = "scheduled" if state is JobState.SCHEDULED else "enqueued"
        each.append(
            {
                "id": job.id,
                "account": job.account,
                "key": job.key,
                "message": json.dumps(job.message, separators=(",", ":")),
                "due_at": job.due_at,
                "expires_at": "" if job.expires_at is None else job.expires_at,
                "state": state,
                "event": history_event(now, event, delay_s=max(0.0, job.due_at - now) or None),
                "priority": job.priority,
                "template": job_template(job.message),
                "to": str(job.message.get("to", "")),
            }
        )
    values = {"now": now, "batch_key": batch["batch_key"], "batch_keep_ms": batch["batch_keep_ms"]}
    return ENQUEUE.key_list(fixed, each=job_keys), ENQUEUE.arguments(values, each=each)


def job_template(message: Mapping[str, Any]) -> str:
    """A job's ``template`` field: ``template_field`` of a template message (``job_template``
    in templates.lua reads the same from an older job's message), '' for any other."""
    template = message.get("template")
    if message.get("type") != "template" or not isinstance(template, Mapping):
        return ""
    language = template.get("language")
    code = language.get("code") if isinstance(language, Mapping) else None
    name = template.get("name")
    return template_field(name, code) if isinstance(name, str) and isinstance(code, str) else ""


STORE_FULL = "Redis is full (maxmemory reached): nothing was enqueued"


class JobStore:
    """Writes new jobs and reads them back (a pending job's record never expires)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys
        self._enqueue = load_script(client, ENQUEUE)

    def add(self, jobs: list[NewJob], *, now: float) -> list[str]:
        """Write new jobs in one round trip; a known idempotency key returns its first job id.

        Raises StoreFull when Redis is out of memory (nothing written).
        """
        keys, argv = enqueue_call(jobs, keys=self._keys, now=now)
        try:
            reply: list[Any] = self._enqueue(keys=keys, args=argv)
        except ResponseError as exc:
            # redis-py raises OutOfMemoryError for Redis's OOM reply (the prefix stripped); a
            # script error can carry the reply whole. Redis refuses only a script's first write,
            # so nothing was written: the caller may retry.
            if not is_out_of_memory(exc):
                raise
            raise StoreFull(STORE_FULL) from None
        return [text(i) for i in reply[len(ENQUEUE.reply) :]]  # no batch key here: no flag set

    def get(self, job_id: str) -> Job | None:
        """The job with its history; None when unknown, or sent longer ago than the retention."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(self._keys.job(job_id))
        pipe.lrange(self._keys.history(job_id), 0, -1)
        raw, history = pipe.execute()
        if not raw:
            return None
        return Job.from_hash(_decoded(raw), [text(line) for line in history])


def _decoded(raw: dict[Any, Any]) -> dict[str, str]:
    return {text(k): text(v) for k, v in raw.items()}
