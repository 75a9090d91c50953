"""Enqueueing: validate everything first, then write the whole batch in one round trip."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeAlias

import redis
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, ValidationError, model_validator
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from worker.account_names import DEFAULT_ACCOUNT
from worker.accounts import known_accounts, unknown_account_message
from worker.errors import FieldProblem, InvalidMessage, Unavailable
from worker.models import Message, field_problems, message_body, parse_message
from worker.settings import Settings, mask_url
from worker.store.connect import connection_problem
from worker.store.jobs import JobStore
from worker.store.keys import Keys
from worker.store.records import NewJob
from worker.store.replication import Replication

Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")]
DAY_S = 86_400
# A job lives at most this long after it is due (ttl_s, or expires_at after send_at).
TTL_MAX_S = 30 * DAY_S
# send_at this far from now, either way, is a mistake (a wrong year), not a plan.
SEND_AT_RANGE_S = 366 * DAY_S


class Priority(StrEnum):
    """Within an account, due ``high`` jobs go before ``normal`` ones, and those before ``bulk``."""

    HIGH = "high"
    NORMAL = "normal"
    BULK = "bulk"


PriorityName: TypeAlias = Literal["high", "normal", "bulk"]
# What a producer hands over: a message model (TextMessage, ...) or its JSON shape as a dict.
Payload: TypeAlias = Message | Mapping[str, Any]


class Envelope(BaseModel):
    """The options around a message: idempotency key, timing, account, priority."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    idempotency_key: Name | None = None
    send_at: datetime | None = None
    expires_at: datetime | None = None
    # Strict: a number, never true (1) or "60"; a type mistake is refused, not read as a value.
    ttl_s: Annotated[StrictFloat, Field(gt=0, le=TTL_MAX_S, allow_inf_nan=False)] | None = None
    account: Name = DEFAULT_ACCOUNT
    priority: Priority = Priority.NORMAL

    @model_validator(mode="after")
    def _one_expiry(self) -> Envelope:
        if self.expires_at is not None and self.ttl_s is not None:
            raise ValueError("give expires_at or ttl_s, not both")
        for name in ("send_at", "expires_at"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                raise ValueError(f"{name} needs a time zone (e.g. 2026-01-01T09:00:00+00:00)")
            try:
                _ = moment and moment.timestamp()
            except OverflowError:
                raise ValueError(f"{name} is out of range") from None
        return self


@dataclass(frozen=True)
class Request:
    """One message to enqueue with its options, as callers hand it over."""

    message: Any
    options: Mapping[str, Any]

    @property
    def payload(self) -> Any:
        """The message's JSON shape (a message model is dumped, a dict is as given)."""
        if isinstance(self.message, BaseModel):
            return self.message.model_dump(mode="json", exclude_none=True)
        return self.message

    @classmethod
    def from_item(cls, item: Any) -> Request:
        """A bare message payload, or an envelope ``{"message": payload, **options}``."""
        if isinstance(item, Mapping) and "message" in item:
            options = {k: v for k, v in item.items() if k != "message"}
            return cls(item["message"], options)
        return cls(item, {})


def given_options(**options: object) -> dict[str, object]:
    """The keyword options a caller set (None means "not given")."""
    return {name: value for name, value in options.items() if value is not None}


@dataclass(frozen=True)
class Enqueued:
    """One job's enqueue result: its id, and whether its idempotency key was already known
    (then ``id`` is the first job's, and nothing new was written)."""

    id: str
    duplicate: bool


def enqueued(jobs: list[NewJob], ids: list[str]) -> list[Enqueued]:
    """Pair written jobs with the ids Redis returned: another id means a known key."""
    return [Enqueued(i, i != job.id) for job, i in zip(jobs, ids, strict=True)]


def build_job(
    request: Request,
    *,
    now: float,
    accounts: frozenset[str],
    prefix: str = "",
    named: frozenset[str] | None = None,
) -> NewJob:
    """Validate one request into a NewJob; InvalidMessage names every bad field.

    ``accounts`` are the accounts the deployment knows: a job for any other is refused, naming
    the accounts ``named`` (default: all of them; an HTTP client is told only its own).
    """
    problems: list[FieldProblem] = []
    try:
        envelope = Envelope.model_validate(dict(request.options))
    except ValidationError as exc:
        problems += field_problems(exc, prefix=prefix)
        envelope = None
    if envelope is not None and envelope.account not in accounts:
        problems.append(
            FieldProblem(
                prefix + "account",
                unknown_account_message(envelope.account, accounts if named is None else named),
            )
        )
        envelope = None
    try:
        body = message_body(parse_message(request.payload))
    except InvalidMessage as exc:
        problems += [FieldProblem(prefix + "message." + p.field, p.message) for p in exc.problems]
        body = None
    if envelope is None or body is None:
        raise InvalidMessage(problems)

    due_at, expires_at = _times(envelope, now=now, prefix=prefix)
    job_id = uuid.uuid4().hex
    return NewJob(
        id=job_id,
        account=envelope.account,
        key=envelope.idempotency_key or job_id,
        message=body,
        due_at=due_at,
        expires_at=expires_at,
        priority=envelope.priority.value,
    )


def _times(envelope: Envelope, *, now: float, prefix: str) -> tuple[float, float | None]:
    """When the job is due and when it expires (None: never), each checked against its range."""
    due_at = envelope.send_at.timestamp() if envelope.send_at else now
    if abs(due_at - now) > SEND_AT_RANGE_S:
        raise InvalidMessage(
            [
                FieldProblem(
                    prefix + "send_at", f"must be within {SEND_AT_RANGE_S // DAY_S} days of now"
                )
            ]
        )
    if envelope.expires_at is not None:
        expires_at: float | None = envelope.expires_at.timestamp()
    elif envelope.ttl_s is not None:
        expires_at = due_at + envelope.ttl_s
    else:
        expires_at = None
    if expires_at is not None and expires_at <= due_at:
        raise InvalidMessage(
            [FieldProblem(prefix + "expires_at", "must be after send_at (or now)")]
        )
    if expires_at is not None and expires_at - due_at > TTL_MAX_S:
        raise InvalidMessage(
            [
                FieldProblem(
                    prefix + "expires_at",
                    f"must be within {TTL_MAX_S // DAY_S} days after send_at (or now)",
                )
            ]
        )
    return due_at, expires_at


class Producer:
    """Puts validated jobs on the schedule."""

    def __init__(
        self,
        jobs: JobStore,
        *,
        accounts: frozenset[str],
        redis_timeout_s: float,
        redis_url: str | None = None,
        replicated: Callable[[list[str]], None] = lambda *_: None,
    ) -> None:
        """``replicated`` returns once the replicas required have every write so far, the jobs
        whose ids it is given among them (raises ReplicasMissing when they do not in time, or
        WriteLost): an enqueue returns only after it.
        ``redis_url``, masked, names the Redis an Unavailable is about."""
        self._jobs = jobs
        self._accounts = accounts
        self._redis_timeout_s = redis_timeout_s
        self._redis_url = redis_url
        self._replicated = replicated

    def enqueue(
        self,
        message: Payload,
        *,
        idempotency_key: str | None = None,
        send_at: datetime | None = None,
        expires_at: datetime | None = None,
        ttl_s: float | None = None,
        account: str | None = None,
        priority: Priority | PriorityName | None = None,
    ) -> str:
        """Enqueue one message; returns its job id (the first job's id for a known key)."""
        options = given_options(
            idempotency_key=idempotency_key,
            send_at=send_at,
            expires_at=expires_at,
            ttl_s=ttl_s,
            account=account,
            priority=priority,
        )
        now = time.time()
        job = build_job(Request(message, options), now=now, accounts=self._accounts)
        return self._add([job], now=now)[0]

    def enqueue_many(self, items: Iterable[Payload]) -> list[str]:
        """Validate all, then write all in one round trip; one bad item enqueues nothing.

        Each item is a bare message payload or an envelope ``{"message": payload, **options}``;
        problems are named ``[index].field``.
        """
        now = time.time()
        jobs = self.validate_many(items, now=now)
        return self._add(jobs, now=now) if jobs else []

    def _add(self, jobs: list[NewJob], *, now: float) -> list[str]:
        """Write validated jobs; Redis down or hung is Unavailable, raised within the timeout.

        After a timeout the jobs may have been written: enqueueing them again with the same
        idempotency keys is safe.
        """
        try:
            ids = self._jobs.add(jobs, now=now)
            self._replicated(ids)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise Unavailable(
                timeout_s=self._redis_timeout_s,
                url=self._redis_url,
                problem=connection_problem(exc),
            ) from exc
        return ids

    def validate_many(self, items: Iterable[Any], *, now: float | None = None) -> list[NewJob]:
        """The jobs these items would make; InvalidMessage lists every problem of every item."""
        now = time.time() if now is None else now
        return validate_many(items, now=now, accounts=self._accounts)


def validate_many(items: Iterable[Any], *, now: float, accounts: frozenset[str]) -> list[NewJob]:
    """The jobs these items would make; InvalidMessage lists every problem of every item,
    each named ``[index].field``."""
    jobs: list[NewJob] = []
    problems: list[FieldProblem] = []
    for index, item in enumerate(items):
        try:
            request = Request.from_item(item)
            jobs.append(build_job(request, now=now, accounts=accounts, prefix=f"[{index}]."))
        except InvalidMessage as exc:
            problems += exc.problems
    if problems:
        raise InvalidMessage(problems)
    return jobs


def producer_for(settings: Settings, client: redis.Redis) -> Producer:
    """The producer ``settings`` describe, writing through ``client``: a fail-fast one, since an
    enqueue in a web request must not stall (the caller closes it)."""
    keys = Keys(settings.redis_prefix)
    replication = Replication(
        keys, replicas=settings.redis_min_replicas, timeout_s=settings.redis_timeout_s
    )
    return Producer(
        JobStore(client, keys),
        accounts=known_accounts(settings.accounts_file),
        redis_timeout_s=settings.redis_timeout_s,
        redis_url=mask_url(settings.state_url),
        replicated=lambda ids: replication.confirm(client, replication.jobs(ids)),
    )
