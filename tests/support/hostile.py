"""A hostile Gateway stand-in: a real socket server that plays crafted answers.

Each request is read whole (headers and Content-Length body) and recorded with its arrival
time; then the next queued ``Play`` (else the default) is played: raw bytes, all at once or
drip-fed, oversized, garbage, HTML, or silence. A play with ``accepts`` counts the message as
sent by the Gateway (``accepted``), as a real Gateway would after a prompt, well-formed success.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

WAMID_OK = "wamid.HOSTILE{n:08d}"


@dataclass(frozen=True)
class Play:
    """One answer: ``raw`` bytes, sent ``chunk`` bytes every ``drip_s`` (0: at once)."""

    raw: bytes
    drip_s: float = 0.0
    chunk: int = 65536
    accepts: bool = False
    silent_s: float = 0.0  # wait this long before answering


def http(
    status: int,
    body: bytes | str | dict[str, Any] = b"",
    headers: dict[str, str] | None = None,
    **play: Any,
) -> Play:
    """A well-framed HTTP/1.1 answer (Connection: close) with the given status and body."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return Play(head + body, **play)


def success(wamid: str, headers: dict[str, str] | None = None) -> Play:
    body = {"isSuccess": True, "data": {"messages": [{"id": wamid}]}}
    return http(200, body, headers, accepts=True)


def gzip_bomb(megabytes: int) -> bytes:
    """A gzip answer that expands to ``megabytes`` MB of zeros, made in a tenth of a second: each
    megabyte compressed once (a full flush makes every later one the same bytes), no trailer."""
    encoder = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    head = encoder.compress(block) + encoder.flush(zlib.Z_FULL_FLUSH)
    piece = encoder.compress(block) + encoder.flush(zlib.Z_FULL_FLUSH)
    return head + piece * (megabytes - 1)


def error(status: int, errors: dict[str, Any], headers: dict[str, str] | None = None) -> Play:
    return http(status, {"isSuccess": False, "errors": errors}, headers)


class _Streamed(httpx.SyncByteStream):
    def __init__(self, content: bytes) -> None:
        self._content = content

    def __iter__(self) -> Iterator[bytes]:
        yield self._content


def mock_gateway(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    """An httpx client on ``MockTransport(handler)`` whose answers come as a real connection's
    do: the body streamed as sent (compressed or not), not read in advance."""

    def streamed(request: httpx.Request) -> httpx.Response:
        answer = handler(request)
        return httpx.Response(
            answer.status_code, headers=answer.headers, stream=_Streamed(answer.content)
        )

    return httpx.Client(transport=httpx.MockTransport(streamed))


class HostileGateway:
    """The server, in threads; ``url`` is its base URL."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.plays: deque[Play] = deque()
        self.default: Play | None = None  # None: a prompt success
        self.requests: list[tuple[float, bytes]] = []
        self.heads: list[bytes] = []  # each request's line and headers, as they came
        self.accepted: list[bytes] = []
        self.answered: list[tuple[bytes, Play]] = []  # each request with the play it got
        self._lock = threading.Lock()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, 0), family=family)
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def play(self, *plays: Play) -> None:
        self.plays.extend(plays)

    def reset(self) -> None:
        """Forget the plays queued and the requests seen (between examples)."""
        with self._lock:
            self.plays.clear()
            self.default = None
            self.requests.clear()
            self.heads.clear()
            self.accepted.clear()
            self.answered.clear()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            request = _read_request(conn)
            if request is None:
                return
            head, body = request
            with self._lock:
                self.requests.append((time.time(), body))
                self.heads.append(head)
                play = self.plays.popleft() if self.plays else self.default
                if play is None:
                    play = success(WAMID_OK.format(n=len(self.requests)))
                if play.accepts:
                    self.accepted.append(body)
                self.answered.append((body, play))
            if play.silent_s:
                time.sleep(play.silent_s)
            for start in range(0, len(play.raw), play.chunk):
                conn.sendall(play.raw[start : start + play.chunk])
                if play.drip_s and not self._stop.is_set():
                    time.sleep(play.drip_s)
        except OSError:
            pass  # the client gave up (its deadline): that is the point of most plays
        finally:
            conn.close()


def _read_request(conn: socket.socket) -> tuple[bytes, bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head, body
