"""Bearer tokens: several valid at once (a rotation), each compared in constant time."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from worker.http.problems import Unauthorized


class BearerTokens:
    """A FastAPI dependency that lets a request through only with one of ``tokens``.

    Every token is compared, whatever matched, so the time taken says nothing about which
    token (or how much of one) was right. No token is ever logged or echoed.
    """

    def __init__(self, tokens: tuple[str, ...]) -> None:
        self._tokens = tuple(token.encode() for token in tokens)

    def __call__(self, request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        candidate = given.strip().encode("utf-8", "replace")
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(candidate, token)
        if scheme.lower() != "bearer" or not matched:
            raise Unauthorized
