"""The HTTP connections the Gateway client calls through: keep-alive pools on httpcore, every
call bounded twice, and httpx's shape on both sides (``stream`` yields an ``httpx.Response``;
failures are raised as httpx's transport errors), so ``worker.send.gateway`` classifies one
family of errors whatever carried the call.

Every call is bounded per phase (connect, write, each read) by ``timeout_s``, and as a whole by
a total deadline (``deadline_s``, by default the same), so a Gateway that drips its answer a byte
a second cannot hold a call past the claim lease that guards it.

Why not ``httpx.Client``: its request and response models, auth and redirect flows cost a send
about as much CPU again as the pool's own work (``bench/overhead.py --profile``), for a POST
that needs none of them. The pool underneath is the one httpx itself uses.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from typing import Any, Self
from urllib.parse import urlencode

import httpcore
import httpx

USER_AGENT = b"msgworker"


class DeadlineBackend(httpcore.NetworkBackend):
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
    def __init__(self, stream: httpcore.NetworkStream, deadline: DeadlineBackend) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.bound(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # h11 ends a request with an empty write: by then the Gateway holds all of it, and a
        # deadline passed just now must not call it a request that never went out.
        if not buffer:
            return
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


# The roots of httpcore's failures (it has no common one).
HTTPCORE_ERRORS = (
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
    httpcore.ProtocolError,
    httpcore.TimeoutException,
    httpcore.NetworkError,
)


def as_httpx_error(exc: Exception) -> httpx.TransportError:
    """httpcore's failure as the httpx transport error of the same name (httpx's classes mirror
    httpcore's, as httpx's own transport maps them); without a twin, its nearest ancestor's."""
    for klass in type(exc).__mro__:
        twin = getattr(httpx, klass.__name__, None)
        if isinstance(twin, type) and issubclass(twin, httpx.TransportError):
            return twin(str(exc))
    return httpx.TransportError(str(exc))


@contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except HTTPCORE_ERRORS as exc:
        raise as_httpx_error(exc) from exc


class _Body(httpx.SyncByteStream):
    """The answer's body as httpx reads it, read from the pool's connection on demand."""

    def __init__(self, response: httpcore.Response) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        with _httpx_errors():
            yield from self._response.iter_stream()

    def close(self) -> None:
        self._response.close()


@lru_cache(maxsize=64)
def _origin(url: str) -> tuple[httpcore.URL, bytes]:
    """``url`` parsed once: its scheme, host, port and path (with its query, if any), and the
    Host header it calls for (an IPv6 address in brackets, a default port left out)."""
    parsed = httpx.URL(url)
    target = httpcore.URL(
        scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=parsed.raw_path
    )
    return target, parsed.netloc


class PooledHTTP:
    """Keep-alive connections to one or more hosts: a JSON POST streamed back, bounded in time.

    ``stream`` takes what the Gateway client passes to ``httpx.Client.stream`` and yields an
    ``httpx.Response`` with the status, headers and the body (read on demand, decoded as httpx
    would), and nothing else of httpx's: no request on it, no cookies, no redirects followed.
    """

    def __init__(
        self,
        *,
        timeout_s: float,
        deadline_s: float | None = None,
        max_connections: int = 10,
        ssl_context: ssl.SSLContext | None = None,
        proxy_url: str | None = None,
    ) -> None:
        self._deadline_s = deadline_s or timeout_s
        self._timeouts = dict.fromkeys(("connect", "read", "write", "pool"), timeout_s)
        self._backend = DeadlineBackend()
        pool = {
            "ssl_context": ssl_context or ssl.create_default_context(),
            "max_connections": max_connections,
            "max_keepalive_connections": max_connections,
            "keepalive_expiry": 5.0,
            "network_backend": self._backend,
        }
        self._pool: httpcore.ConnectionPool
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

    @contextmanager
    def stream(
        self, method: str, url: str, *, json: Any, params: dict[str, str], headers: dict[str, str]
    ) -> Iterator[httpx.Response]:
        origin, host = _origin(url)
        target = origin.target
        if params:
            target += (b"&" if b"?" in target else b"?") + urlencode(params).encode("ascii")
        content = _json_bytes(json)
        request_headers = [
            (b"Host", host),
            (b"User-Agent", USER_AGENT),
            (b"Content-Type", b"application/json"),
            (b"Content-Length", b"%d" % len(content)),
            *((name.encode("ascii"), value.encode("ascii")) for name, value in headers.items()),
        ]
        request = httpcore.Request(
            method,
            httpcore.URL(scheme=origin.scheme, host=origin.host, port=origin.port, target=target),
            headers=request_headers,
            content=content,
            extensions={"timeout": self._timeouts},
        )
        self._backend.arm(self._deadline_s)
        with _httpx_errors():
            answer = self._pool.handle_request(request)
        try:
            yield httpx.Response(answer.status, headers=answer.headers, stream=_Body(answer))
        finally:
            answer.close()

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _json_bytes(document: Any) -> bytes:
    """The body as httpx 0.28 encodes it: compact UTF-8 JSON, no NaN."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )


def env_proxy_for(url: str) -> str | None:
    """The proxy ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` name for ``url``, unless
    ``NO_PROXY`` exempts its host: what httpx would use on its own."""
    target = httpx.URL(url)
    if urllib.request.proxy_bypass(target.host):
        return None
    proxies = urllib.request.getproxies_environment()
    return proxies.get(target.scheme) or proxies.get("all")


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
        self._pools: list[PooledHTTP] = []
        self._lock = threading.Lock()

    def _pool(self) -> PooledHTTP:
        pool: PooledHTTP | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = PooledHTTP(
                timeout_s=self._timeout_s,
                deadline_s=self._deadline_s,
                max_connections=self._connections,
                ssl_context=self._ssl_context,
                proxy_url=self._proxy_url,
            )
            self._local.pool = pool
            with self._lock:
                self._pools.append(pool)
        return pool

    def stream(
        self, method: str, url: str, *, json: Any, params: dict[str, str], headers: dict[str, str]
    ) -> AbstractContextManager[httpx.Response]:
        return self._pool().stream(method, url, json=json, params=params, headers=headers)

    def close(self) -> None:
        with self._lock:
            for pool in self._pools:
                pool.close()
            self._pools.clear()
