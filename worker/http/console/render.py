"""The console's pages: Jinja2 templates (autoescaped), its refusals and its response headers.

Every console route goes through ``ConsoleRoute``: a refusal raised anywhere becomes its page,
a query parameter out of range a 400 page, Redis not answering a 503 page, and a fault a 500
page (its traceback in the log only). ``ConsoleHeaders`` puts headers that forbid framing,
caching, referrers to other sites and any script or resource from elsewhere on every answer
under /console, error ones included (a path no route serves, a body refused before any route).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import redis
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.http.body import KIB, read_body
from worker.http.problems import BodyTooLarge, ErrorAnswer
from worker.logs import get_logger, mask_phone
from worker.observe.views import iso

log = get_logger(__name__)
HERE = Path(__file__).resolve().parent
PREFIX = "/console"
LOGIN_PATH = "/console/login"
FORM_MAX_BYTES = 64 * KIB
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: under it a browser sends its own form posts with "Origin: null", the
    # same as a page elsewhere that hides its origin, and the login must tell those apart.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _ago(at: float | None) -> str:
    if at is None:
        return "an unknown time"
    seconds = max(0, int(time.time() - at))
    if seconds < 120:
        return f"{seconds} s ago"
    return f"{seconds // 60} min ago" if seconds < 7200 else f"{seconds // 3600} h ago"


templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)
templates.filters["iso"] = lambda at: iso(at, timespec="seconds") or "-"
templates.filters["ago"] = _ago
templates.filters["mask_phone"] = lambda value: mask_phone(str(value))


def page(name: str, http_status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(templates.get_template(name).render(**context), http_status)


class Refused(Exception):
    """Raised to answer with an error page (nothing was changed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class NeedsLogin(Exception):
    """Raised by a page asked for without a session: the browser goes to the login page."""


async def read_form(request: Request) -> dict[str, list[str]]:
    """An urlencoded form body, bounded while it streams; anything else is refused."""
    try:
        body = await read_body(request, limit=FORM_MAX_BYTES)
    except BodyTooLarge:
        raise Refused(413, "The form is too large.") from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "The form is not UTF-8.") from None
    return parse_qs(text, keep_blank_values=True, max_num_fields=1000)


def first(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _out_of_range(exc: RequestValidationError) -> Refused:
    """400 naming the parameters (ones the route declares, so never text from the address)."""
    names = sorted({str(error["loc"][-1]) for error in exc.errors() if error.get("loc")})
    which = f" ({', '.join(names)})" if names else ""
    return Refused(400, f"A parameter of this address is invalid or out of range{which}.")


def _refusal(refused: Refused) -> HTMLResponse:
    return page("error.html", refused.status, status=refused.status, message=refused.message)


class ConsoleRoute(APIRoute):
    """A route whose refusals, login redirects, bad parameters, Redis outages and faults are
    pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except NeedsLogin:
                return RedirectResponse(LOGIN_PATH, 303)
            except RequestValidationError as exc:
                return _refusal(_out_of_range(exc))
            except Refused as refused:
                return _refusal(refused)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("console.redis_unavailable", error=type(exc).__name__)
                response = page(
                    "error.html",
                    503,
                    status=503,
                    message="Redis does not answer; this page will work again once it does.",
                )
                response.headers["Retry-After"] = "5"
                return response
            except (HTTPException, ErrorAnswer):
                raise  # the service's own answers (a body refused before it was read, say)
            except Exception:  # a fault: a page with the headers; its traceback to the log
                log.exception("console.fault", path=request.url.path)
                return page("error.html", 500, status=500, message="Something went wrong.")

        return guarded


class ConsoleHeaders:
    """ASGI middleware: the console's security headers on every answer under /console."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(HEADERS)
            await send(message)

        await self.app(scope, receive, with_headers)
