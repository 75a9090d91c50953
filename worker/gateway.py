"""The Connexease Gateway client: the only code that speaks HTTP and catches ``httpx`` errors."""

from __future__ import annotations

import json
import ssl
import threading
import time
from typing import Any, Protocol

import httpx

from worker.answers import interpret
from worker.errors import (
    GatewayAnswerLost,
    GatewayError,
    GatewayNotReached,
    GatewayRejected,
    GatewayUnreachable,
)
from worker.logs import REDACTED
from worker.outcome import CONNECTION, TIMEOUT, Sent

MESSAGE_PATH = "/v1/wa/message"

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


def make_http_client(
    *, timeout_s: float, max_connections: int = 10, ssl_context: ssl.SSLContext | None = None
) -> httpx.Client:
    """A pooled client: keep-alive connections, every phase bounded."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout_s),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        follow_redirects=False,
        verify=ssl_context or True,
    )


class Poster(Protocol):
    """The one thing the Gateway client needs of HTTP."""

    def post(
        self,
        url: str,
        *,
        json: Any,
        params: dict[str, str],
        headers: dict[str, str],
    ) -> httpx.Response: ...


class PerThreadHTTP:
    """The process's connections, held per thread: a thread reuses its own keep-alive socket.

    One shared pool of a hundred connections costs more CPU in httpcore's bookkeeping (linear
    in the pool's size, on every request) than the sends themselves; a small pool per thread
    keeps that constant. One TLS context is built once and shared.
    """

    def __init__(self, *, timeout_s: float, connections_per_thread: int = 2) -> None:
        self._timeout_s = timeout_s
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
                max_connections=self._connections,
                ssl_context=self._ssl_context,
            )
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def post(
        self, url: str, *, json: Any, params: dict[str, str], headers: dict[str, str]
    ) -> httpx.Response:
        return self._client().post(url, json=json, params=params, headers=headers)

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()


def translate_transport_error(exc: httpx.TransportError) -> GatewayUnreachable:
    """The GatewayUnreachable for an httpx failure, without its text (it may hold URLs)."""
    # TransportError itself is in the table, so the most specific entry always exists.
    error_class, code = next(
        TRANSPORT_ERRORS[klass] for klass in type(exc).__mro__ if klass in TRANSPORT_ERRORS
    )
    return error_class(code=code, description=f"{type(exc).__name__} talking to the Gateway")


class GatewayClient:
    """Sends one message and returns its wamid, or raises a GatewayError. Nothing else escapes."""

    def __init__(self, http: Poster, *, base_url: str, api_key: str, sandbox: bool = False) -> None:
        self._http = http
        self._url = base_url.rstrip("/") + MESSAGE_PATH
        self._params = {"is_fake": "true"} if sandbox else {}
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._api_key = api_key

    def send(self, body: dict[str, Any]) -> Sent:
        """POST the message; a success returns Sent, every failure raises a GatewayError."""
        try:
            response = self._http.post(
                self._url, json=body, params=self._params, headers=self._headers
            )
        except httpx.TransportError as exc:
            raise translate_transport_error(exc) from exc
        except httpx.HTTPError as exc:  # e.g. a body that does not decode: answered, unreadable
            raise GatewayAnswerLost(code=CONNECTION, description=type(exc).__name__) from exc
        answer = interpret(
            response.status_code, response.headers, response.content, now_s=time.time()
        )
        if isinstance(answer, GatewayError):
            raise self._without_key(answer)
        return answer

    def _without_key(self, error: GatewayRejected) -> GatewayRejected:
        """The error with the key removed, should the Gateway or a proxy echo it back."""
        if not self._api_key or (
            self._api_key not in error.description and self._api_key not in json.dumps(error.params)
        ):
            return error
        params = json.loads(json.dumps(error.params).replace(self._api_key, REDACTED))
        return GatewayRejected(
            code=error.code,
            group=error.group,
            status=error.status,
            description=error.description.replace(self._api_key, REDACTED),
            params=params,
            retry_after_s=error.retry_after_s,
            rate_limit=error.rate_limit,
        )
