"""The Connexease Gateway client: the only code that calls the Gateway and catches its ``httpx``
errors (the alert sinks in ``worker.observe.sinks`` make HTTP calls of their own).

Every call is bounded twice: each phase (connect, write, each read) by ``timeout_s``, and the
whole call by a total deadline (``deadline_s``, by default the same), so a Gateway that drips
its answer a byte a second cannot hold a call past the claim lease that guards it. The answer's
body is read up to ``BODY_MAX`` bytes and no further.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, Protocol

import httpcore
import httpx

from worker.errors import (
    GatewayAnswerLost,
    GatewayError,
    GatewayNotReached,
    GatewayRejected,
    GatewayUnreachable,
)
from worker.logs import REDACTED, redact
from worker.outcome import CONNECTION, TIMEOUT, Sent, http_code
from worker.send.answers import interpret

MESSAGE_PATH = "/v1/wa/message"
# An answer is a few hundred bytes; past this much the rest is not read (nor kept in memory).
BODY_MAX = 64 * 1024

# Every httpx transport failure, mapped by whether the request can have reached the Gateway.
# Looked up along the exception's MRO; a test fails when httpx grows a class not listed here.
TRANSPORT_ERRORS: dict[type[httpx.TransportError], tuple[type[GatewayUnreachable], str]] = {
    httpx.ConnectTimeout: (GatewayNotReached, TIMEOUT),
    httpx.PoolTimeout: (GatewayNotReached, TIMEOUT),
    httpx.ConnectError: (GatewayNotReached, CONNECTION),
    # A request that was not completely written cannot have been acted upon.
    httpx.WriteTimeout: (GatewayNotReached, TIMEOUT),
    httpx.WriteError: (GatewayNotReached, CONNECTION),
    httpx.UnsupportedProtocol: (GatewayNotReached, CONNECTION),
    httpx.LocalProtocolError: (GatewayNotReached, CONNECTION),
    httpx.ProxyError: (GatewayNotReached, CONNECTION),
    # Written, then no (complete) answer: the Gateway may have sent the message.
    httpx.ReadTimeout: (GatewayAnswerLost, TIMEOUT),
    httpx.ReadError: (GatewayAnswerLost, CONNECTION),
    httpx.RemoteProtocolError: (GatewayAnswerLost, CONNECTION),
    httpx.CloseError: (GatewayAnswerLost, CONNECTION),
    httpx.TimeoutException: (GatewayAnswerLost, TIMEOUT),
    httpx.NetworkError: (GatewayAnswerLost, CONNECTION),
    httpx.ProtocolError: (GatewayAnswerLost, CONNECTION),
    httpx.TransportError: (GatewayAnswerLost, CONNECTION),
}


class _Deadline(httpcore.NetworkBackend):
    """httpcore's own socket backend, with every socket operation cut short at a deadline.

    The deadline is armed per request and per thread; each connect, write and read then waits
    at most until it, whatever its own timeout says.
    """

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()
        self._local = threading.local()

    def arm(self, seconds: float) -> None:
        self._local.at = time.monotonic() + seconds

    def bound(self, timeout: float | None, error: type[Exception]) -> float | None:
        at: float | None = getattr(self._local, "at", None)
        if at is None:
            return timeout
        left = at - time.monotonic()
        if left <= 0:
            raise error("the call's total deadline passed")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host,
            port,
            self.bound(timeout, httpcore.ConnectTimeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        return _DeadlineStream(stream, self)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_unix_socket(
            path, self.bound(timeout, httpcore.ConnectTimeout), socket_options=socket_options
        )
        return _DeadlineStream(stream, self)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.bound(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.bound(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._stream.start_tls(
            ssl_context, server_hostname, self._deadline.bound(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(stream, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx's transport on a pool whose sockets honour a total deadline per request."""

    def __init__(
        self,
        *,
        deadline_s: float,
        max_connections: int,
        ssl_context: ssl.SSLContext,
        proxy_url: str | None = None,
    ) -> None:
        super().__init__(verify=ssl_context)
        self._deadline_s = deadline_s
        self._backend = _Deadline()
        # httpx offers no way to hand its pool a network backend: the pool is built again with
        # the same settings and ours (through the proxy the environment names, as httpx would).
        pool = {
            "ssl_context": ssl_context,
            "max_connections": max_connections,
            "max_keepalive_connections": max_connections,
            "keepalive_expiry": 5.0,
            "network_backend": self._backend,
        }
        if proxy_url is None:
            self._pool = httpcore.ConnectionPool(**pool)  # type: ignore[arg-type]
        else:
            proxy = httpx.URL(proxy_url)
            auth = (proxy.username, proxy.password) if proxy.username else None
            self._pool = httpcore.HTTPProxy(
                proxy_url=str(proxy.copy_with(username=None, password=None)),
                proxy_auth=auth,
                **pool,  # type: ignore[arg-type]
            )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._backend.arm(self._deadline_s)
        return super().handle_request(request)


def env_proxy_for(url: str) -> str | None:
    """The proxy ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` name for ``url``, unless
    ``NO_PROXY`` exempts its host: what httpx would use on its own."""
    target = httpx.URL(url)
    if urllib.request.proxy_bypass(target.host):
        return None
    proxies = urllib.request.getproxies_environment()
    return proxies.get(target.scheme) or proxies.get("all")


def make_http_client(
    *,
    timeout_s: float,
    deadline_s: float | None = None,
    max_connections: int = 10,
    ssl_context: ssl.SSLContext | None = None,
    proxy_url: str | None = None,
) -> httpx.Client:
    """A pooled client: keep-alive connections, every phase and the whole call bounded.

    ``deadline_s`` bounds a request from its start to the last byte of its answer read
    (default ``timeout_s``).
    """
    transport = _DeadlineTransport(
        deadline_s=deadline_s or timeout_s,
        max_connections=max_connections,
        ssl_context=ssl_context or httpx.create_ssl_context(),
        proxy_url=proxy_url,
    )
    return httpx.Client(
        timeout=httpx.Timeout(timeout_s), transport=transport, follow_redirects=False
    )


class Poster(Protocol):
    """The one thing the Gateway client needs of HTTP: ``httpx.Client.stream``."""

    def stream(
        self,
        method: str,
        url: str,
        *,
        json: Any,
        params: dict[str, str],
        headers: dict[str, str],
    ) -> AbstractContextManager[httpx.Response]: ...


class PerThreadHTTP:
    """The process's connections, held per thread: a thread reuses its own keep-alive socket.

    One shared pool of a hundred connections costs more CPU in httpcore's bookkeeping (linear
    in the pool's size, on every request) than the sends themselves; a small pool per thread
    keeps that constant. One TLS context is built once and shared.
    """

    def __init__(
        self,
        *,
        timeout_s: float,
        deadline_s: float | None = None,
        connections_per_thread: int = 2,
        proxy_url: str | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._proxy_url = proxy_url
        self._deadline_s = deadline_s
        self._connections = connections_per_thread
        self._ssl_context = ssl.create_default_context()
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = make_http_client(
                timeout_s=self._timeout_s,
                deadline_s=self._deadline_s,
                max_connections=self._connections,
                ssl_context=self._ssl_context,
                proxy_url=self._proxy_url,
            )
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def stream(
        self, method: str, url: str, *, json: Any, params: dict[str, str], headers: dict[str, str]
    ) -> AbstractContextManager[httpx.Response]:
        return self._client().stream(method, url, json=json, params=params, headers=headers)

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()


def _read_at_most(chunks: Iterable[bytes], limit: int) -> bytes:
    """The body's first ``limit`` bytes; the rest is never read (the connection is dropped)."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body[:limit])


def translate_transport_error(exc: httpx.TransportError) -> GatewayUnreachable:
    """The GatewayUnreachable for an httpx failure, without its text (it may hold URLs)."""
    # TransportError itself is in the table, so the most specific entry always exists.
    error_class, code = next(
        TRANSPORT_ERRORS[klass] for klass in type(exc).__mro__ if klass in TRANSPORT_ERRORS
    )
    return error_class(code=code, description=f"{type(exc).__name__} talking to the Gateway")


class GatewayClient:
    """Sends one message and returns its wamid, or raises a GatewayError. Nothing else escapes."""

    def __init__(
        self,
        http: Poster,
        *,
        base_url: str,
        api_key: str | Callable[[], str],
        sandbox: bool = False,
    ) -> None:
        """``api_key`` is the key, or a function giving the key as it is now (a rotated key)."""
        self._http = http
        self._url = base_url.rstrip("/") + MESSAGE_PATH
        self._sandbox = sandbox
        self._key = api_key if callable(api_key) else (lambda: api_key)

    def send(self, body: dict[str, Any], *, fake: bool = False) -> Sent:
        """POST the message; a success returns Sent, every failure raises a GatewayError.

        ``fake`` adds ``is_fake=true`` (the Gateway checks the key, the limit and the balance and
        delivers nothing) whatever the account's sandbox setting.
        """
        key = self._key()
        params = {"is_fake": "true"} if fake or self._sandbox else {}
        auth = {"Authorization": f"Bearer {key}"}
        try:
            with self._http.stream(
                "POST", self._url, json=body, params=params, headers=auth
            ) as response:
                status, headers = response.status_code, response.headers
                content = _read_at_most(response.iter_bytes(), BODY_MAX)
        except httpx.TransportError as exc:
            raise translate_transport_error(exc) from exc
        except httpx.HTTPError as exc:  # e.g. a body that does not decode: answered, unreadable
            raise GatewayAnswerLost(code=CONNECTION, description=type(exc).__name__) from exc
        # Redaction first, before anything is cut short: a key echoed at the end of a long
        # description must not survive as a prefix.
        if key:
            text = content.decode("utf-8", "surrogateescape")
            content = redact(text, [key]).encode("utf-8", "surrogateescape")
        answer = interpret(status, headers, content, now_s=time.time())
        if isinstance(answer, GatewayError):
            raise _without_key(answer, key)
        # Looked at again once decoded: JSON escapes (\u0073k_...) hide a key from the bytes.
        if key and redact(answer.wamid, [key]) != answer.wamid:
            return replace(answer, wamid=REDACTED)
        return answer


def _without_key(error: GatewayRejected, key: str) -> GatewayRejected:
    """The error with the key and its fragments removed, wherever a proxy put them (JSON
    escapes decoded); a code or group holding one is not a code: the HTTP status names it."""
    secrets = [key] if key else []
    params = json.loads(redact(json.dumps(error.params, ensure_ascii=False), secrets))

    def clean(identifier: str | None) -> str | None:
        leaks = identifier is not None and redact(identifier, secrets) != identifier
        return None if leaks else identifier

    return GatewayRejected(
        code=clean(error.code) or http_code(error.status or 0),
        group=clean(error.group),
        status=error.status,
        description=redact(error.description, secrets),
        params=params,
        retry_after_s=error.retry_after_s,
        rate_limit=error.rate_limit,
    )
