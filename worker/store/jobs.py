"""Job records in Redis and their transitions, each one atomic (Lua in ``worker/store/lua/``).

A pending job is always in exactly one place: the schedule (its account's lane, ``Keys.due``,
``id|gen`` by when it may go), the leases (dispatched, being sent) or the account's hold list.
Broker messages only dispatch ``(id, gen)``; a stale ``gen`` is dropped: no re-delivery acts twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import redis
from redis.exceptions import OutOfMemoryError, ResponseError

from worker.errors import StoreFull
from worker.outcome import Outcome, RateLimitHeaders
from worker.store.claims import Claim, Execution, Opening, Verdict
from worker.store.delivery import Delivery
from worker.store.history import history_event
from worker.store.keys import Keys
from worker.store.ratelimit import RateLimit, learn_arguments
from worker.store.scripts import load_script


def is_out_of_memory(exc: ResponseError) -> bool:
    """Whether Redis refused a write because maxmemory is reached."""
    return isinstance(exc, OutOfMemoryError) or "OOM command not allowed" in str(exc)


class JobState(StrEnum):
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    HELD = "held"
    PARKED = "parked"


SETTLED = frozenset({JobState.SENT, JobState.PARKED})


@dataclass(frozen=True)
class NewJob:
    """A validated job ready to be written."""

    id: str
    account: str
    key: str
    message: dict[str, Any]
    due_at: float
    expires_at: float | None = None
    priority: str = "normal"


NO_BATCH = ("", "", 0)  # enqueue.lua's batch key arguments (accounts, key, ms to keep): none


def enqueue_arguments(
    jobs: list[NewJob], *, prefix: str, now: float, batch: Sequence[Any] = NO_BATCH
) -> list[Any]:
    """ARGV of ``enqueue.lua`` for these jobs (shared by the blocking and the asyncio store)."""
    argv: list[Any] = [prefix, now, *batch]
    for job in jobs:
        state = JobState.SCHEDULED if job.due_at > now else JobState.QUEUED
        event = "scheduled" if state is JobState.SCHEDULED else "enqueued"
        argv += [
            job.id,
            job.account,
            job.key,
            json.dumps(job.message, separators=(",", ":")),
            job.due_at,
            "" if job.expires_at is None else job.expires_at,
            state,
            history_event(now, event, delay_s=max(0.0, job.due_at - now) or None),
            job.priority,
        ]
    return argv


STORE_FULL = "Redis is full (maxmemory reached): nothing was enqueued"


@dataclass(frozen=True)
class Job:
    """A job record as read back."""

    id: str
    account: str
    key: str
    message: dict[str, Any]
    state: JobState
    gen: int
    attempts: int
    reschedules: int
    enqueued_at: float
    updated_at: float
    due_at: float | None = None
    expires_at: float | None = None
    last_code: str | None = None
    wamid: str | None = None
    parked_reason: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    priority: str = "normal"
    delivery: Delivery | None = None  # what WhatsApp did with it once sent (webhooks)

    @classmethod
    def from_hash(cls, raw: dict[str, str], history: list[str]) -> Job:
        def number(name: str) -> float | None:
            value = raw.get(name, "")
            return float(value) if value else None

        return cls(
            id=raw["id"],
            account=raw["account"],
            key=raw["key"],
            message=json.loads(raw.get("message") or "{}"),  # none once read or undelivered
            state=JobState(raw.get("state", JobState.SENDING)),
            gen=int(raw.get("gen", 0)),
            attempts=int(raw.get("attempts", 0)),
            reschedules=int(raw.get("reschedules", 0)),
            enqueued_at=float(raw["enqueued_at"]),
            updated_at=float(raw.get("updated_at") or raw["enqueued_at"]),
            due_at=number("due_at"),
            expires_at=number("expires_at"),
            last_code=raw.get("last_code") or None,
            wamid=raw.get("wamid") or None,
            parked_reason=raw.get("parked_reason") or None,
            history=[json.loads(line) for line in history],
            priority=raw.get("priority") or "normal",
            delivery=Delivery.from_hash(raw),
        )


@dataclass(frozen=True)
class SentRecord:
    """What recording a send found: whether a billing breaker closed, whether a retries_exhausted
    incident of the account is open, and the next dispatch's claim when one was begun."""

    breaker_closed: bool
    exhausted_open: bool
    next: Claim | None = None


class JobStore:
    """Reads job records and applies every transition atomically; a pending job's record never
    expires, a sent one is kept ``retention_s``."""

    def __init__(self, client: redis.Redis, keys: Keys, *, retention_s: float) -> None:
        self._redis = client
        self._keys = keys
        self._retention_s = retention_s
        self._enqueue = load_script(client, "enqueue")
        self._begin = load_script(client, "begin_job", include=("ratelimit", "begin"))
        self._finish = load_script(client, "finish", include=("ratelimit", "delivery", "begin"))
        self._recheck = load_script(client, "recheck", include=("ratelimit",))

    def add(self, jobs: list[NewJob], *, now: float) -> list[str]:
        """Write new jobs in one round trip; a known idempotency key returns its first job id.

        Raises StoreFull when Redis is out of memory (nothing written).
        """
        argv = enqueue_arguments(jobs, prefix=self._keys.prefix, now=now)
        try:
            reply: list[Any] = self._enqueue(args=argv)
        except ResponseError as exc:
            # redis-py raises OutOfMemoryError for Redis's OOM reply (the prefix stripped); a
            # script error can carry the reply whole. Redis refuses only a script's first write,
            # so nothing was written: the caller may retry.
            if not is_out_of_memory(exc):
                raise
            raise StoreFull(STORE_FULL) from None
        return [_text(i) for i in reply[1:]]  # after the batch flag, which no key here sets

    def get(self, job_id: str) -> Job | None:
        """The job with its history; None when unknown, or sent longer ago than the retention."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(self._keys.job(job_id))
        pipe.lrange(self._keys.history(job_id), 0, -1)
        raw, history = pipe.execute()
        if not raw:
            return None
        return Job.from_hash(_decoded(raw), [_text(line) for line in history])

    def begin(
        self,
        execution: Execution,
        *,
        now: float,
        lease_s: float,
        probe_interval_s: float,
        rate: RateLimit,
    ) -> Claim:
        """Claim a dispatched job and reserve its call slot, or say why not (see begin.lua)."""
        opening = Opening(execution, lease_s, probe_interval_s, rate)
        return self.open(opening, now=now)

    def open(self, opening: Opening, *, now: float) -> Claim:
        """``begin`` for an ``Opening``."""
        argv = opening.arguments(prefix=self._keys.prefix, now=now, retention_s=self._retention_s)
        return _claim(self._begin(args=argv), opening.execution, now)

    def hand_back(self, executions: Sequence[Execution], *, now: float) -> None:
        """Dispatches this worker will not begin (it is shutting down): their leases end now, so
        the next pump round of any worker dispatches them again, not half a minute later. Only
        leases still held are touched (a settled job's is gone)."""
        if executions:
            members = {f"{e.job_id}|{e.gen}": now for e in executions}
            self._redis.zadd(self._keys.leases, members, xx=True)

    def recheck(
        self, execution: Execution, job: Job, *, now: float, probe_interval_s: float
    ) -> Claim:
        """A fresh look at the switches after a wait for a slot, in one round trip (recheck.lua):
        a halt holds the job, a cooldown reschedules it, an open breaker parks it or probes."""
        k, account = self._keys, job.account
        reply = self._recheck(
            keys=[
                k.job(job.id),
                k.history(job.id),
                k.claim(account, job.key),
                k.leases,
                k.halt(account),
                k.held(account),
                k.cooldown(account),
                k.breaker(account),
                k.breaker_probe(account),
                k.window(account, "sec"),
                k.window(account, "min"),
            ],
            args=[
                execution.job_id,
                execution.gen,
                now,
                execution.holder,
                history_event(now, "held"),
                history_event(now, "wait", action="cooldown_wait"),
                probe_interval_s,
                *(k.prefix, account, job.priority),  # where a cooldown puts it back
            ],
        )
        verdict, wait_ms = (_text(part) for part in reply)
        return Claim(Verdict(verdict), "", int(wait_ms) / 1000, job, now)

    def _apply(
        self,
        execution: Execution,
        now: float,
        mode: str,
        event: str,
        *extra: Any,
        headers: RateLimitHeaders | None = None,
    ) -> tuple[bool, bool]:
        applied, flag, *_ = self._settle(execution, now, mode, event, *extra, headers=headers)
        return bool(applied), bool(flag)

    def _settle(
        self,
        execution: Execution,
        now: float,
        mode: str,
        event: str,
        *extra: Any,
        headers: RateLimitHeaders | None = None,
    ) -> list[Any]:
        """finish.lua's reply for one settlement."""
        reply: list[Any] = self._finish(
            args=[
                self._keys.prefix,
                execution.job_id,
                execution.gen,
                now,
                execution.holder,
                mode,
                event,
                *learn_arguments(headers or RateLimitHeaders()),
                *extra,
            ]
        )
        return reply

    def mark_sent(
        self,
        execution: Execution,
        wamid: str,
        *,
        now: float,
        headers: RateLimitHeaders | None = None,
        then: Opening | None = None,
    ) -> SentRecord:
        """Record the wamid and the ledger entry; with ``then``, begin that dispatch (the next
        of the group) in the same round trip."""
        event = history_event(now, "attempt", code="OK", action="sent")
        prefix, retention_s = self._keys.prefix, self._retention_s
        after = then.arguments(prefix=prefix, now=now, retention_s=retention_s) if then else []
        reply = self._settle(
            execution, now, "sent", event, wamid, retention_s, *after, headers=headers
        )
        # For a job with no record finish.lua says {0, 0}: nothing closed, nothing begun.
        _, closed, exhausted, *begun = reply if len(reply) > 2 else [*reply, 0]
        claim = _claim(begun, then.execution, now) if then and begun else None
        return SentRecord(bool(int(closed)), bool(int(exhausted)), claim)

    def retry(
        self,
        execution: Execution,
        *,
        now: float,
        delay_s: float,
        action: str,
        outcome: Outcome | None = None,
        cooldown_until: float | None = None,
        headers: RateLimitHeaders | None = None,
    ) -> bool:
        """Put the job back on the schedule after ``delay_s``; False if no longer ours.
        ``outcome``: the answer that led here (none for a wait). A ``reschedule`` uses no
        attempt; a ``replicas_wait`` (begun, not called) gives its attempt and slot back. The
        history says ``attempt`` after an answer, ``ambiguous`` when the answer was lost after
        the request went out (the Gateway may have sent it), else ``wait``."""
        code = outcome.code if outcome else None
        name = "ambiguous" if outcome and outcome.ambiguous else "attempt" if outcome else "wait"
        event = history_event(now, name, code=code, action=action, delay_s=round(delay_s, 3))
        applied, _ = self._apply(
            execution,
            now,
            "retry",
            event,
            delay_s,
            code or "",
            {"reschedule": "reschedule", "replicas_wait": "uncalled"}.get(action, "other"),
            "" if cooldown_until is None else cooldown_until,
            headers=headers,
        )
        return applied

    def park(
        self,
        execution: Execution,
        *,
        now: float,
        code: str,
        reason: str,
        record: dict[str, Any],
        open_breaker: bool = False,
        headers: RateLimitHeaders | None = None,
    ) -> tuple[bool, bool]:
        """Move the job to the dead-letter queue; returns (applied, breaker newly opened)."""
        event = history_event(now, "parked", code=code, action=f"park:{reason}")
        return self._apply(
            execution,
            now,
            "park",
            event,
            code,
            reason,
            json.dumps(record, separators=(",", ":")),
            "1" if open_breaker else "0",
            headers=headers,
        )

    def hold(
        self,
        execution: Execution,
        *,
        now: float,
        code: str,
        reason: str,
        headers: RateLimitHeaders | None = None,
    ) -> tuple[bool, bool]:
        """Halt the account and hold the job; returns (applied, halt newly set)."""
        event = history_event(now, "held", code=code, action="halt")
        halt = json.dumps({"code": code, "reason": reason, "since": now})
        return self._apply(execution, now, "hold", event, code, halt, headers=headers)


# The job's fields a claiming begin.lua returns, in its order (`names` there, after gen, state).
CLAIMED_FIELDS = "account key calling expires_at message attempts reschedules enqueued_at priority"


def _claim(reply: list[Any], execution: Execution, begun_at: float) -> Claim:
    """begin.lua's reply (run at ``begun_at``): verdict, detail, wait_ms and the job's fields."""
    verdict, detail, wait_ms, *fields = (_text(part) for part in reply)
    job = None
    if fields:
        raw = dict(zip(CLAIMED_FIELDS.split(), fields, strict=True))
        raw.update(id=execution.job_id, gen=str(execution.gen))
        job = Job.from_hash(raw, [])
    return Claim(Verdict(verdict), detail, int(wait_ms) / 1000, job, begun_at)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decoded(raw: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}
