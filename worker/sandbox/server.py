"""The sandbox gateway: a local stand-in for the Connexease Gateway, as an aiohttp server.

    POST /v1/wa/message       the Gateway (auth, rate limits, billing, validation, faults)
    GET  /sandbox/health      {"ok": true}
    GET  /sandbox/messages    ?since=<seq>&limit=<n> -> {"messages": [...], "next": <seq>}
                              (messages with seq > since; seq starts at 1, never restarts)
    GET  /sandbox/stats       requests, accepted, by_code, by_status, by_key (codes per key
                              label), faults, balances, config
    GET  /sandbox/requests    {"requests": [{"at", "answered_at", "code"}, ...]}: every request's
                              arrival, when its answer left
    GET  /sandbox/webhooks    status webhooks posted, refused, given up (with webhook_url set)
    POST /sandbox/topup       {"amount", "key_label"?} -> {"balances": {...}}
    POST /sandbox/config      {knob: value, ..., "outage_s"?} -> {"config": {...}}
    POST /sandbox/keys        {"api_key", "balance"?, "no_billing"?, "waba_broken"?,
                               "rate_per_sec"?, "rate_per_min"?} -> {"key_label": "key<n>"}
                              (a key's own limits; null or absent: the sandbox's)
    POST /sandbox/script      {"answers": [...]} -> {"queued": <waiting>}
    POST /sandbox/reset       -> {"ok": true}
    POST /sandbox/template_event  {"event", "name", "language", "waba_id"?, "reason"?}: Meta's
                              review of a template (PAUSED, DISABLED, REINSTATED, ...), applied
                              and posted as a webhook -> {"posted": {...}} (needs webhook_url)

Latency is an ``asyncio.sleep``, so thousands of slow requests cost no thread. The decisions
live in `worker.sandbox.state`; this module only moves bytes.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

from aiohttp import hdrs, web

from worker.sandbox.config import SandboxConfig, SandboxInputError
from worker.sandbox.state import SandboxState
from worker.sandbox.webhooks import StatusPoster

__all__ = ["RunningSandbox", "SandboxConfig", "build_app", "serve"]

HOST = "127.0.0.1"
MESSAGES_LIMIT_DEFAULT = 1000
MESSAGES_LIMIT_MAX = 10_000
# Benchmarks open hundreds of connections at once; the default backlog of 128 makes the rest
# wait for a SYN retransmit (a full second) and the figures lie.
BACKLOG = 2048
# Stalled "slow" answers must not hold a test's teardown for timeout_fault_s.
SHUTDOWN_TIMEOUT_S = 0.5

STATE = web.AppKey("sandbox_state", SandboxState)
POSTER = web.AppKey("sandbox_poster", StatusPoster)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(config: SandboxConfig) -> web.Application:
    """The sandbox as an aiohttp application, with its own fresh state."""
    app = web.Application()
    app[STATE] = SandboxState(config)
    poster = app[POSTER] = StatusPoster()

    async def open_poster(_: web.Application) -> None:
        await poster.open()

    async def close_poster(_: web.Application) -> None:
        await poster.close()

    app.on_startup.append(open_poster)
    app.on_cleanup.append(close_poster)
    app.add_routes(
        [
            web.post("/v1/wa/message", _send),
            web.get("/sandbox/health", _admin(_health)),
            web.get("/sandbox/messages", _admin(_messages)),
            web.get("/sandbox/stats", _admin(_stats)),
            web.get("/sandbox/requests", _admin(_requests)),
            web.get("/sandbox/webhooks", _admin(_webhooks)),
            web.post("/sandbox/topup", _admin(_topup)),
            web.post("/sandbox/config", _admin(_configure)),
            web.post("/sandbox/keys", _admin(_keys)),
            web.post("/sandbox/script", _admin(_script)),
            web.post("/sandbox/reset", _admin(_reset)),
            web.post("/sandbox/template_event", _admin(_template_event)),
        ]
    )
    return app


async def _send(request: web.Request) -> web.StreamResponse:
    body = await request.read()  # read first: a dropped request must have been fully sent
    headers = request.headers
    reply = request.app[STATE].handle(
        headers.get(hdrs.AUTHORIZATION),
        body,
        headers.get("X-Idempotency-Key"),
        fake=request.query.get("is_fake") == "true",
    )
    if reply.accepted is not None:
        request.app[POSTER].accepted(request.app[STATE].config, reply.accepted)
    if reply.delay_s > 0:
        await asyncio.sleep(reply.delay_s)
    if reply.drop and request.transport is not None:
        # Writing the response below then fails with a ConnectionError, which aiohttp takes
        # for a client that went away: the socket closes with no byte of answer.
        request.transport.close()
    return web.Response(
        status=reply.status or 200,
        body=reply.body,
        content_type=reply.content_type,
        headers=reply.headers,
    )


def _admin(handler: Callable[[web.Request], Awaitable[Any]]) -> _Handler:
    """Serve a handler's result as JSON; refused input becomes a 400 naming the field."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            result = await handler(request)
        except SandboxInputError as exc:
            return web.json_response({"error": str(exc), "field": exc.field}, status=400)
        return web.json_response(result)

    return wrapped


async def _object(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise SandboxInputError("body", "must be JSON") from None
    if not isinstance(data, dict):
        raise SandboxInputError("body", "must be a JSON object")
    return data


def _query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SandboxInputError(name, "must be a whole number") from None
    if not low <= value <= high:
        raise SandboxInputError(name, f"must be between {low} and {high}")
    return value


async def _health(_: web.Request) -> dict[str, Any]:
    return {"ok": True}


async def _messages(request: web.Request) -> dict[str, Any]:
    since = _query_int(request, "since", 0, 0, 2**63)
    limit = _query_int(request, "limit", MESSAGES_LIMIT_DEFAULT, 1, MESSAGES_LIMIT_MAX)
    return request.app[STATE].messages(since, limit)


async def _stats(request: web.Request) -> dict[str, Any]:
    return request.app[STATE].snapshot()


async def _requests(request: web.Request) -> dict[str, Any]:
    return {"requests": request.app[STATE].arrivals()}


async def _webhooks(request: web.Request) -> dict[str, Any]:
    return dict(request.app[POSTER].counts)


async def _topup(request: web.Request) -> dict[str, Any]:
    data = await _object(request)
    unknown = sorted(set(data) - {"amount", "key_label"})
    if unknown:
        raise SandboxInputError(unknown[0], "is not a top-up field")
    balances = request.app[STATE].topup(data.get("amount"), data.get("key_label"))
    return {"balances": balances}


async def _configure(request: web.Request) -> dict[str, Any]:
    return {"config": request.app[STATE].configure(await _object(request))}


async def _keys(request: web.Request) -> dict[str, Any]:
    return {"key_label": request.app[STATE].upsert_key(await _object(request))}


async def _script(request: web.Request) -> dict[str, Any]:
    data = await _object(request)
    unknown = sorted(set(data) - {"answers"})
    if unknown:
        raise SandboxInputError(unknown[0], "is not a script field")
    return {"queued": request.app[STATE].queue_script(data.get("answers"))}


async def _template_event(request: web.Request) -> dict[str, Any]:
    state = request.app[STATE]
    if not state.config.webhook_url:
        raise SandboxInputError("webhook_url", "is not set: there is nowhere to post the event")
    event = state.template_event(await _object(request))
    body = event.webhook_body(time.time())
    request.app[POSTER].event(state.config, body)
    return {"posted": body}


async def _reset(request: web.Request) -> dict[str, Any]:
    request.app[STATE].reset()
    return {"ok": True}


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        uvloop = importlib.import_module("uvloop")  # optional speed-up, not a dependency
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def serve(config: SandboxConfig, host: str, port: int) -> None:
    """Run the sandbox until interrupted (``msgworker sandbox``); prints nothing."""
    web.run_app(
        build_app(config),
        host=host,
        port=port,
        print=None,
        access_log=None,
        backlog=BACKLOG,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        loop=_new_event_loop(),
    )


class RunningSandbox:
    """The sandbox on 127.0.0.1 in a background thread with its own event loop.

    ``with RunningSandbox(SandboxConfig(rate_per_sec=5)) as sandbox: httpx.post(sandbox.url …)``
    """

    def __init__(self, config: SandboxConfig | None = None, port: int = 0) -> None:
        self.config = config or SandboxConfig()
        self._requested_port = port
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:43123``; only while running."""
        if self._port is None:
            raise RuntimeError("the sandbox is not running")
        return f"http://{HOST}:{self._port}"

    @property
    def port(self) -> int:
        """The port actually bound (a free one when 0 was asked for)."""
        if self._port is None:
            raise RuntimeError("the sandbox is not running")
        return self._port

    def start(self) -> None:
        """Bind and start serving; returns once requests are accepted."""
        if self._thread is not None:
            raise RuntimeError("the sandbox is already running")
        loop = _new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="sandbox", daemon=True)
        self._thread.start()
        try:
            self._runner = asyncio.run_coroutine_threadsafe(self._open(), loop).result()
        except BaseException:
            self._halt_loop()
            raise

    def stop(self) -> None:
        """Stop serving; in-flight stalled answers are cut off."""
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result()
        self._halt_loop()

    async def _open(self) -> web.AppRunner:
        runner = web.AppRunner(
            build_app(self.config), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S
        )
        await runner.setup()
        await web.TCPSite(runner, HOST, self._requested_port, backlog=BACKLOG).start()
        self._port = int(runner.addresses[0][1])
        return runner

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        me = asyncio.current_task()
        stragglers = [task for task in asyncio.all_tasks() if task is not me]
        for task in stragglers:
            task.cancel()
        await asyncio.gather(*stragglers, return_exceptions=True)

    def _halt_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
        self._loop = self._thread = None
        self._port = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
