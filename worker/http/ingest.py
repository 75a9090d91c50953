"""The ingest API: enqueue one message or a batch, look a job up; Bearer tokens required.

Validation is the producer's own (``build_job``): the same models, the same errors, the same
enqueue script. A refused request writes nothing. A token scoped to some accounts (``Scope``)
enqueues only on those, sees only their jobs, and is told only their names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from worker.errors import FieldProblem, InvalidMessage, StoreFull, Unavailable
from worker.http import examples, problems
from worker.http.auth import INGEST_SCHEME, BearerTokens, Scope, requires
from worker.http.batch import check_batch
from worker.http.body import BATCH_MAX_BYTES, SINGLE_MAX_BYTES, read_body, read_json
from worker.http.schemas import (
    NOT_JSON,
    UNAUTHORIZED,
    UNAVAILABLE,
    Accepted,
    BatchAccepted,
    BatchDuplicate,
    BatchErrors,
    Duplicate,
    Errors,
    JobView,
    Problem,
    Responses,
)
from worker.observe.views import job_view
from worker.producer import Name, build_job
from worker.producer import Request as EnqueueRequest
from worker.producer_async import AsyncProducer
from worker.store.records import NewJob

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Batches are checked off the event loop, in one thread: more would only share the GIL with it.
BATCH_CHECKS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-check")
# Job ids msgworker makes are 32 hex digits; anything much longer names no job.
JOB_ID_MAX = 256
_KEY: TypeAdapter[str] = TypeAdapter(Name)
SINGLE_KEY = "The message's idempotency key (as idempotency_key in the body)"
BATCH_KEY = (
    "the same key again, on the same accounts, answers 200 with the first batch's ids and "
    "enqueues nothing"
)
SINGLE_DESCRIPTION = (
    "The body is an envelope {message, idempotency_key?, send_at?, expires_at?, ttl_s?,"
    " account?, priority?} or a bare message payload, at most 1 MiB. The "
    f"{IDEMPOTENCY_HEADER} header sets the idempotency key: a key seen before answers "
    "200 with the first job's id and enqueues nothing. The body's Content-Type is not "
    "checked; it must be one JSON document."
)
BATCH_DESCRIPTION = (
    '{"messages": [envelope or bare payload, ...]}, at most 1,000 items and 16 MiB. '
    "Any invalid item enqueues nothing: the 422 lists the bad indexes and fields "
    "(field relative to the envelope, e.g. message.to; index null for the batch "
    "itself), the first 100 found, with truncated: true when there were more. "
    "Envelopes may carry their own idempotency keys (two of one account may not share "
    f"one); the {IDEMPOTENCY_HEADER} header names the batch ({BATCH_KEY})."
)

FORBIDDEN: Responses = {
    403: {"model": Problem, "description": "The token may not enqueue on an account named"}
}


def _body(ref: str, header: str, samples: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The OpenAPI parts of a route that reads its body itself: the body's schema and examples,
    the Idempotency-Key header, the token."""
    key = {
        "name": IDEMPOTENCY_HEADER,
        "in": "header",
        "required": False,
        "description": header,
        "schema": _KEY.json_schema(),
    }
    body = {"schema": {"$ref": f"#/components/schemas/{ref}"}, "examples": samples}
    return {
        **requires(INGEST_SCHEME),
        "parameters": [key],
        "requestBody": {"required": True, "content": {"application/json": body}},
    }


def _producer(request: Request) -> AsyncProducer:
    producer: AsyncProducer = request.app.state.producer
    return producer


def _scope(request: Request) -> Scope:
    """The accounts the request's token may act on (set by the router's token check)."""
    scope: Scope = request.state.scope
    return scope


async def _submit(request: Request, jobs: list[NewJob], *, now: float) -> list[Any]:
    try:
        return await _producer(request).submit(jobs, now=now)
    except StoreFull:
        raise problems.RedisFull from None
    except Unavailable:
        raise problems.RedisUnavailable from None


def _errors(found: list[FieldProblem]) -> list[dict[str, Any]]:
    return [{"field": p.field, "error": p.message} for p in found]


def _with_header_key(request: Request, item: Any) -> tuple[Any, list[FieldProblem]]:
    """The envelope with the Idempotency-Key header as its key (a different key is refused)."""
    header = request.headers.get(IDEMPOTENCY_HEADER)
    if header is None:
        return item, []
    envelope = dict(item) if isinstance(item, Mapping) and "message" in item else {"message": item}
    given = envelope.get("idempotency_key")
    if given is not None and given != header:
        return item, [FieldProblem("idempotency_key", f"differs from the {IDEMPOTENCY_HEADER}")]
    envelope["idempotency_key"] = header
    return envelope, []


async def post_message(request: Request) -> JSONResponse:
    data = await read_json(request, limit=SINGLE_MAX_BYTES)
    metrics = request.app.state.metrics
    item, found = _with_header_key(request, data)
    now = time.time()
    known, scope = _producer(request).accounts, _scope(request)
    try:
        job = build_job(
            EnqueueRequest.from_item(item), now=now, accounts=known, named=scope.shown(known)
        )
    except InvalidMessage as exc:
        found += exc.problems
    if found:
        metrics.messages.labels("invalid").inc()
        return problems.invalid(_errors(found))
    if not scope.allows(job.account):
        raise problems.Forbidden(job.account)
    (result,) = await _submit(request, [job], now=now)
    if result.duplicate:
        metrics.messages.labels("duplicate").inc()
        return JSONResponse({"id": result.id, "duplicate": True}, 200)
    metrics.messages.labels("accepted").inc()
    return JSONResponse({"id": result.id}, 202)


async def post_batch(request: Request) -> JSONResponse:
    body = await read_body(request, limit=BATCH_MAX_BYTES)
    now = time.time()
    accounts, scope = _producer(request).accounts, _scope(request)
    batch_key, key_errors = _batch_key(request)
    # Off the event loop, one batch at a time: parsing and validating 16 MiB takes the GIL for
    # a while, and health checks, webhooks and other requests must still be answered.
    checked = await asyncio.get_running_loop().run_in_executor(
        BATCH_CHECKS,
        partial(check_batch, body, now=now, accounts=accounts, named=scope.shown(accounts)),
    )
    metrics = request.app.state.metrics
    errors = key_errors + checked.errors or _repeated_keys(checked.jobs)
    if errors:
        metrics.messages.labels("invalid").inc(checked.items)
        return problems.invalid(errors)
    _check_scope(scope, checked.jobs)
    return await _write_batch(request, checked.jobs, now=now, batch_key=batch_key)


def _batch_key(request: Request) -> tuple[str | None, list[dict[str, Any]]]:
    """The batch's Idempotency-Key header, if given, or why it is refused (as a 422 error)."""
    header = request.headers.get(IDEMPOTENCY_HEADER)
    if header is None:
        return None, []
    try:
        return _KEY.validate_python(header), []
    except ValidationError as exc:
        error = str(exc.errors(include_url=False)[0]["msg"])
        return None, [{"index": None, "field": IDEMPOTENCY_HEADER, "error": error}]


def _repeated_keys(jobs: list[NewJob]) -> list[dict[str, Any]]:
    """A 422 error for each envelope whose idempotency key another of the batch has (the same
    account), naming the other's index: only one of them could be enqueued."""
    first: dict[tuple[str, str], int] = {}
    named: set[int] = set()
    errors: list[dict[str, Any]] = []
    for index, job in enumerate(jobs):
        if job.key == job.id:
            continue  # no key given: the job's own id
        seen = first.setdefault((job.account, job.key), index)
        if seen != index:
            if seen not in named:
                named.add(seen)
                errors.append(_repeated(seen, index))
            errors.append(_repeated(index, seen))
    return errors


def _repeated(index: int, other: int) -> dict[str, Any]:
    return {
        "index": index,
        "field": "idempotency_key",
        "error": f"is also the idempotency_key of messages[{other}] (same account)",
    }


def _check_scope(scope: Scope, jobs: list[NewJob]) -> None:
    """Forbidden (the whole batch) when any job is on an account the token may not use."""
    for index, job in enumerate(jobs):
        if not scope.allows(job.account):
            raise problems.Forbidden(job.account, index)


async def _write_batch(
    request: Request, jobs: list[NewJob], *, now: float, batch_key: str | None
) -> JSONResponse:
    try:
        written = await _producer(request).write(jobs, now=now, batch_key=batch_key)
    except StoreFull:
        raise problems.RedisFull from None
    except Unavailable:
        raise problems.RedisUnavailable from None
    metrics = request.app.state.metrics
    if written.batch_seen:
        metrics.messages.labels("duplicate").inc(len(written.ids))
        return JSONResponse({"ids": written.ids, "duplicate": True}, 200)
    duplicates = sum(1 for job, i in zip(jobs, written.ids, strict=True) if i != job.id)
    metrics.messages.labels("accepted").inc(len(jobs) - duplicates)
    metrics.messages.labels("duplicate").inc(duplicates)
    return JSONResponse({"ids": written.ids}, 202)


async def get_job(request: Request, job_id: str) -> JSONResponse:
    if not job_id or len(job_id) > JOB_ID_MAX:
        raise problems.NotFound
    try:
        job = await _producer(request).get(job_id)
    except Unavailable:
        raise problems.RedisUnavailable from None
    if job is None or not _scope(request).allows(job.account):
        raise problems.NotFound  # another account's job is no job to this token
    return JSONResponse(job_view(job))


def _authorised(tokens: BearerTokens) -> Any:
    """The router's dependency: the request's token checked, its scope kept for the handlers."""

    def authorise(request: Request) -> None:
        request.state.scope = tokens(request)

    return Depends(authorise)


def build_router(tokens: BearerTokens) -> APIRouter:
    router = APIRouter(tags=["ingest"], dependencies=[_authorised(tokens)])
    router.post(
        "/v1/messages",
        status_code=202,
        operation_id="enqueueMessage",
        summary="Enqueue one message",
        description=SINGLE_DESCRIPTION,
        openapi_extra=_body("SingleRequest", SINGLE_KEY, examples.single_request()),
        responses={
            202: {"model": Accepted, "description": "Enqueued"},
            200: {"model": Duplicate, "description": "The idempotency key is known"},
            **NOT_JSON,
            **UNAUTHORIZED,
            **FORBIDDEN,
            413: {"model": Problem, "description": "The body exceeds 1 MiB"},
            422: {"model": Errors, "description": "The bad fields; nothing enqueued"},
            **UNAVAILABLE,
        },
    )(post_message)
    router.post(
        "/v1/messages/batch",
        status_code=202,
        operation_id="enqueueBatch",
        summary="Enqueue up to 1,000 messages in one round trip",
        description=BATCH_DESCRIPTION,
        openapi_extra=_body("BatchRequest", BATCH_KEY, examples.batch_request()),
        responses={
            202: {"model": BatchAccepted, "description": "All enqueued"},
            200: {"model": BatchDuplicate, "description": "The batch's key is known"},
            **NOT_JSON,
            **UNAUTHORIZED,
            **FORBIDDEN,
            413: {"model": Problem, "description": "The body exceeds 16 MiB"},
            422: {"model": BatchErrors, "description": "The bad items; nothing enqueued"},
            **UNAVAILABLE,
        },
    )(post_batch)
    router.get(
        "/v1/jobs/{job_id}",
        operation_id="getJob",
        summary="A job's state and history, as msgworker job --json shows it",
        openapi_extra=requires(INGEST_SCHEME),
        responses={
            200: {"model": JobView, "description": "The job"},
            **UNAUTHORIZED,
            404: {
                "model": Problem,
                "description": "No job has this id (or, to a scoped token, another account's)",
            },
            **UNAVAILABLE,
        },
    )(get_job)
    return router
