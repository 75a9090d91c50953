"""The service's connections: how long a client may take, and how many may be open at once.

uvicorn closes a keep-alive connection that stays idle after an answer, but keeps one that
never completes its request's headers for ever, and its own cap (``limit_concurrency``) counts
the open connections at every request, so once it is reached the clients already connected get
503 too. ``GuardedHttpToolsProtocol`` gives every request ``HEADERS_TIMEOUT_S`` to arrive
whole (from the connection's start, or from the previous answer) and judges a connection
against the cap once, when it opens: one past ``limit_concurrency`` answers its request 503 and
closes. A head (request line and headers) past ``HEAD_MAX_BYTES`` is refused with 431: the
parser would hold it all. ``serve`` (``worker.http.app``) runs uvicorn with it.
"""

from __future__ import annotations

import asyncio
import json
import resource
from typing import Any

from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from worker.http.problems import RETRY_AFTER_S

# A request's line and headers must arrive within this; a keep-alive connection idle this long
# after an answer is closed.
HEADERS_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 5
# A request's line and headers together; more is refused (431) before more is held.
HEAD_MAX_BYTES = 64 * 1024
HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-length: 0\r\nconnection: close\r\n\r\n"
)
# File descriptors beside the connections: Redis pools, the log, the listening socket.
SPARE_FILES = 100


TOO_MANY = json.dumps({"error": "too many connections; retry after the Retry-After seconds"})


async def too_many_connections(
    _scope: Scope, _receive: ASGIReceiveCallable, send: ASGISendCallable
) -> None:
    """The answer of a connection past the cap, in the service's own shape; then it closes."""
    body = TOO_MANY.encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER_S).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header timeout and a cap judged at connect time."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_connections = config.limit_concurrency
        self.limit_concurrency = None  # applied in connection_made instead
        self.headers_due: asyncio.TimerHandle | None = None
        self.in_head = False
        self.head_bytes = 0
        self.answered = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.max_connections is not None and len(self.connections) > self.max_connections:
            self.logger.warning("Too many connections: %d open.", len(self.connections))
            self.app = too_many_connections
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_arrived()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        was_in_head = self.in_head
        super().data_received(data)
        # All of it was the head, still incomplete: a read that went on in the head, or any
        # read before the connection's first answer (nothing but the head came before it). A
        # read that ended a body and began the next head counts from the next read: how much of
        # it was head is unknown.
        if self.in_head and (was_in_head or not self.answered):
            self.head_bytes += len(data)
            if self.head_bytes > HEAD_MAX_BYTES and not self.transport.is_closing():
                self._headers_arrived()
                self.transport.write(HEAD_TOO_LARGE)
                self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head = True
        self.head_bytes = 0

    def on_headers_complete(self) -> None:
        self.in_head = False
        self._headers_arrived()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.answered = True
        # Waiting for the next request (no pipelined one started): its headers are due too.
        if self.timeout_keep_alive_task is not None:
            self._await_headers()

    def _await_headers(self) -> None:
        self._headers_arrived()
        self.headers_due = self.loop.call_later(HEADERS_TIMEOUT_S, self._headers_late)

    def _headers_arrived(self) -> None:
        if self.headers_due is not None:
            self.headers_due.cancel()
            self.headers_due = None

    def _headers_late(self) -> None:
        self.headers_due = None
        if not self.transport.is_closing():
            self.transport.close()


def raise_open_files_limit(connections: int) -> int:
    """Raise this process's soft limit of open files to its hard limit, so that the connection
    cap, not the limit, decides who is refused; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + SPARE_FILES
    target = max(soft, wanted) if hard == resource.RLIM_INFINITY else hard
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return max(soft, target)
