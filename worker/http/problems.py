"""The error answers of the HTTP service, raised anywhere and turned into JSON in one place."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

# Seconds a client should wait before trying again after a 503.
RETRY_AFTER_S = 1
# A 422 lists at most this many errors (saying when there were more): enough to fix a request,
# never an answer larger than the request.
ERRORS_MAX = 100


class ErrorAnswer(Exception):
    """An error answer: a status and a one-line ``error``."""

    status = 500
    error = "internal error"
    headers: dict[str, str] | None = None

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error}, self.status, headers=self.headers)


class Unauthorized(ErrorAnswer):
    """Raised when the Authorization header carries no valid Bearer token."""

    status = 401
    error = "a valid Authorization: Bearer <token> header is required"
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012 - a constant


class Forbidden(ErrorAnswer):
    """Raised when a token scoped to some accounts names another (nothing is enqueued)."""

    status = 403

    def __init__(self, account: str, index: int | None = None) -> None:
        super().__init__()
        item = "" if index is None else f"messages[{index}]: "
        self.error = f"{item}this token may not enqueue on account {account!r}"


class NotFound(ErrorAnswer):
    status = 404
    error = "not found"


class BodyTooLarge(ErrorAnswer):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.error = f"the body exceeds {limit} bytes"


class NotJSON(ErrorAnswer):
    """Raised when the body is not one JSON document (bad syntax, bad UTF-8, too deep)."""

    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.error = f"the body is not JSON: {reason}"

    def response(self) -> JSONResponse:
        return JSONResponse({"errors": [{"field": "body", "error": self.error}]}, self.status)


class RedisUnavailable(ErrorAnswer):
    """Raised when Redis does not answer in time: nothing was (knowingly) written."""

    status = 503
    error = "the job store (Redis) did not answer; retry after the Retry-After seconds"
    headers = {"Retry-After": str(RETRY_AFTER_S)}  # noqa: RUF012 - a constant


class RedisFull(RedisUnavailable):
    error = "the job store (Redis) is full; nothing was enqueued"


def invalid(errors: list[dict[str, Any]]) -> JSONResponse:
    """422: the bad fields (the first ``ERRORS_MAX``, ``truncated`` when there were more),
    nothing enqueued."""
    if len(errors) > ERRORS_MAX:
        return JSONResponse({"errors": errors[:ERRORS_MAX], "truncated": True}, 422)
    return JSONResponse({"errors": errors}, 422)


def install_handlers(app: FastAPI) -> None:
    """Every error answer in the service's own shapes, FastAPI's defaults replaced."""

    async def problem(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ErrorAnswer)  # noqa: S101 - registered for ErrorAnswer only
        return exc.response()

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)  # noqa: S101
        error = "not found" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse({"error": error}, exc.status_code, headers=exc.headers)

    async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)  # noqa: S101
        errors = [
            {
                "field": ".".join(str(part) for part in error.get("loc", ()) if part != "body")
                or "body",
                "error": str(error.get("msg", "is invalid")),
            }
            for error in exc.errors()
        ]
        return invalid(errors)

    app.add_exception_handler(ErrorAnswer, problem)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
