"""The request and answer models of the HTTP API; the OpenAPI document is generated from them.

The request models are the producer's own (``worker.models`` and ``Envelope``): what the API
documents is exactly what the producer validates, never a second description of it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from worker.http.problems import ERRORS_MAX
from worker.models import Message
from worker.producer import Envelope, PriorityName
from worker.store.receipts import ReceiptStatus
from worker.store.states import JobState

BATCH_MAX = 1000


class MessageEnvelope(Envelope):
    """A message with its options (all optional): the shape of one JSON line of ``enqueue
    --file``. ``idempotency_key``: the same key twice enqueues once. ``send_at``: when to send
    (ISO 8601 with a time zone). ``expires_at`` or ``ttl_s``: when it is no longer worth sending.
    ``account``: a configured Gateway account. ``priority``: high, normal or bulk."""

    message: Message


SingleRequest = Annotated[
    MessageEnvelope | Message,
    Field(description="An envelope {message, options...} or a bare message payload."),
]


class BatchRequest(BaseModel):
    """Up to 1,000 envelopes or bare payloads; one invalid item enqueues nothing."""

    model_config = ConfigDict(extra="forbid")

    messages: Annotated[list[MessageEnvelope | Message], Field(min_length=1, max_length=BATCH_MAX)]


class Accepted(BaseModel):
    """202: the message is enqueued under this job id."""

    id: str


class Duplicate(BaseModel):
    """200: a job with this idempotency key exists; its id, nothing new was enqueued."""

    id: str
    duplicate: Literal[True] = True


class BatchAccepted(BaseModel):
    """202: every message is enqueued; the job ids in the order given (a known key's first id)."""

    ids: list[str]


class BatchDuplicate(BaseModel):
    """200: a batch with this Idempotency-Key exists; its ids, nothing new was enqueued."""

    ids: list[str]
    duplicate: Literal[True] = True


class FieldError(BaseModel):
    field: str = Field(description="The dotted path of the bad field, e.g. message.to")
    error: str


# Present (true) only when there were more errors than those listed.
Truncated = Annotated[
    Literal[True] | None, Field(description=f"true: more than the {ERRORS_MAX} errors listed")
]


class Errors(BaseModel):
    """422 (or 400 for a body that is not JSON, with field "body"): nothing was enqueued."""

    errors: list[FieldError] = Field(max_length=ERRORS_MAX)
    truncated: Truncated = None


class BatchFieldError(BaseModel):
    index: int | None = Field(description="The item's position in messages; null: the batch")
    field: str = Field(description="Relative to the envelope, e.g. message.to")
    error: str


class BatchErrors(BaseModel):
    """422: the bad items and fields, in order, up to the first 100; nothing was enqueued."""

    errors: list[BatchFieldError] = Field(max_length=ERRORS_MAX)
    truncated: Truncated = None


class Problem(BaseModel):
    """401, 403, 404, 413, 503: what went wrong, in one line."""

    error: str


class Ok(BaseModel):
    """200: the process answers (/healthz), or the webhook's statuses are applied."""

    status: Literal["ok"]


class Ready(BaseModel):
    """200: Redis answers."""

    status: Literal["ready"]


class HistoryEvent(BaseModel):
    at: str | None
    event: str | None
    code: str | None
    action: str | None
    delay_s: float | None


class ReceiptView(BaseModel):
    """WhatsApp's receipt for a sent job: the latest delivery status, when, the error."""

    status: ReceiptStatus
    at: str
    error: Any = None


class JobView(BaseModel):
    """A job, as ``msgworker job --json`` prints it."""

    id: str
    state: JobState
    account: str
    attempts: int
    last_code: str | None
    wamid: str | None
    priority: PriorityName
    delivery: ReceiptView | None = None
    history: list[HistoryEvent]


# The answers several routes declare, each exactly as the routes send it.
Responses = dict[int | str, dict[str, Any]]
RETRY_AFTER = {"schema": {"type": "integer"}, "description": "Seconds to wait before trying again"}
UNAUTHORIZED: Responses = {401: {"model": Problem, "description": "No valid Bearer token"}}
NOT_JSON: Responses = {400: {"model": Errors, "description": 'The body is not JSON (field "body")'}}
UNAVAILABLE: Responses = {
    503: {
        "model": Problem,
        "description": "Redis did not answer within REDIS_TIMEOUT_S (or is full); see Retry-After",
        "headers": {"Retry-After": RETRY_AFTER},
    }
}
