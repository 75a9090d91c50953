"""The Connexease Gateway client: the only code that calls the Gateway and catches its ``httpx``
errors (the alert sinks in ``worker.observe.sinks`` make HTTP calls of their own).

It calls through anything shaped like ``httpx.Client.stream`` (``Poster``): in a worker, the
bounded keep-alive pools of ``worker.send.transport``. The answer's body is read up to
``BODY_MAX`` bytes and no further, decoded first when the Gateway compressed it although asked
not to (``worker.send.answer_body``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, Protocol

import httpx

from worker.errors import (
    GatewayAnswerLost,
    GatewayError,
    GatewayNotReached,
    GatewayRejected,
    GatewayUnreachable,
)
from worker.logs import REDACTED, SECRETS, Secrets
from worker.outcome import CONNECTION, TIMEOUT, Sent, http_code
from worker.send.answer_body import ACCEPT_IDENTITY, read_body
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


class Poster(Protocol):
    """The one thing the Gateway client needs of HTTP: ``httpx.Client.stream``'s shape."""

    def stream(
        self,
        method: str,
        url: str,
        *,
        json: Any,
        params: dict[str, str],
        headers: dict[str, str],
    ) -> AbstractContextManager[httpx.Response]: ...


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
        secrets: Secrets = SECRETS,
    ) -> None:
        """``api_key`` is the key, or a function giving the key as it is now (a rotated key).
        Each key used joins ``secrets``, and answers are redacted of all it holds: an answer
        quoting a key rotated out is as redacted as one quoting the key in use."""
        self._http = http
        self._url = base_url.rstrip("/") + MESSAGE_PATH
        self._sandbox = sandbox
        self._key = api_key if callable(api_key) else (lambda: api_key)
        self._secrets = secrets

    def send(self, body: dict[str, Any], *, fake: bool = False) -> Sent:
        """POST the message; a success returns Sent, every failure raises a GatewayError.

        ``fake`` adds ``is_fake=true`` (the Gateway checks the key, the limit and the balance and
        delivers nothing) whatever the account's sandbox setting.
        """
        key = self._key()
        self._secrets.add(key)
        params = {"is_fake": "true"} if fake or self._sandbox else {}
        headers = {"Authorization": f"Bearer {key}", **ACCEPT_IDENTITY}
        try:
            with self._http.stream(
                "POST", self._url, json=body, params=params, headers=headers
            ) as response:
                status, answer_headers = response.status_code, response.headers
                encoding = answer_headers.get("content-encoding", "")
                content = read_body(response.iter_raw(), encoding, BODY_MAX)
        except httpx.TransportError as exc:
            raise translate_transport_error(exc) from exc
        if content is None:  # answered, but unreadable: as good as lost
            raise GatewayAnswerLost(code=CONNECTION, description="an answer it cannot decode")
        # Redaction first, before anything is cut short: a key echoed at the end of a long
        # description must not survive as a prefix.
        hide = self._secrets.hide
        content = hide(content.decode("utf-8", "surrogateescape")).encode(
            "utf-8", "surrogateescape"
        )
        answer = interpret(status, answer_headers, content, now_s=time.time())
        if isinstance(answer, GatewayError):
            raise _without_secrets(answer, hide)
        # Looked at again once decoded: JSON escapes (\u0073k_...) hide a key from the bytes.
        if hide(answer.wamid) != answer.wamid:
            return replace(answer, wamid=REDACTED)
        return answer


def _without_secrets(error: GatewayRejected, hide: Callable[[str], str]) -> GatewayRejected:
    """The error with the keys and their fragments removed, wherever a proxy put them (JSON
    escapes decoded); a code or group holding one is not a code: the HTTP status names it."""
    params = json.loads(hide(json.dumps(error.params, ensure_ascii=False)))

    def clean(identifier: str | None) -> str | None:
        leaks = identifier is not None and hide(identifier) != identifier
        return None if leaks else identifier

    return GatewayRejected(
        code=clean(error.code) or http_code(error.status or 0),
        group=clean(error.group),
        status=error.status,
        description=hide(error.description),
        params=params,
        retry_after_s=error.retry_after_s,
        rate_limit=error.rate_limit,
    )
