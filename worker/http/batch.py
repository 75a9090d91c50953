"""A batch's body checked into jobs, or into the errors that refuse it.

``check_batch`` is pure and takes bytes: parsing and validating up to 16 MiB holds the GIL for
seconds, so the ingest route runs it away from the event loop (``worker.http.ingest``). It stops
at the first error past ``ERRORS_MAX``: a 422 lists no more, and an invalid batch costs no more
than the items up to its 101st error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from worker.errors import InvalidMessage
from worker.http.body import parse_json
from worker.http.problems import ERRORS_MAX
from worker.http.schemas import BATCH_MAX
from worker.producer import Request, build_job
from worker.store.records import NewJob


@dataclass(frozen=True)
class CheckedBatch:
    """Every item's job, or (when any item is invalid) the first errors found."""

    jobs: list[NewJob] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    items: int = 0


def check_batch(
    body: bytes,
    *,
    now: float,
    accounts: frozenset[str],
    named: frozenset[str] | None = None,
) -> CheckedBatch:
    """The batch in ``body`` validated item by item; NotJSON when it is not JSON. An unknown
    account's error names the accounts ``named`` (default: all)."""
    data = parse_json(body)
    items = data.get("messages") if isinstance(data, dict) else None
    shape = _batch_shape_error(data, items)
    if shape is not None:
        return CheckedBatch(errors=[{"index": None, "field": shape[0], "error": shape[1]}])
    assert isinstance(items, list)  # noqa: S101 - checked by _batch_shape_error
    jobs: list[NewJob] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            request = Request.from_item(item)
            jobs.append(build_job(request, now=now, accounts=accounts, named=named))
        except InvalidMessage as exc:
            errors += [{"index": index, "field": p.field, "error": p.message} for p in exc.problems]
            if len(errors) > ERRORS_MAX:
                break
    if errors:
        return CheckedBatch(errors=errors, items=len(items))
    return CheckedBatch(jobs=jobs, items=len(items))


def _batch_shape_error(data: Any, items: Any) -> tuple[str, str] | None:
    """What is wrong with the batch itself (not its items), if anything."""
    if not isinstance(data, dict):
        return "body", 'must be an object {"messages": [...]}'
    extra = sorted(set(data) - {"messages"})
    if extra:
        return extra[0], "is not a known field"
    if not isinstance(items, list):
        return "messages", "must be a list of messages"
    if not 1 <= len(items) <= BATCH_MAX:
        return "messages", f"must have 1 to {BATCH_MAX} items"
    return None
