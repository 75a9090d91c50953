"""Bearer tokens: several valid at once (a rotation), each compared in constant time, each with
the accounts it may act on (its ``Scope``)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request

from worker.accounts import IngestClient
from worker.errors import ConfigError
from worker.http.problems import Unauthorized
from worker.settings import token_problem


@dataclass(frozen=True)
class Scope:
    """The accounts a token may enqueue on and read jobs of; ``None``: every account."""

    accounts: frozenset[str] | None = None

    def allows(self, account: str) -> bool:
        return self.accounts is None or account in self.accounts

    def shown(self, known: frozenset[str]) -> frozenset[str]:
        """The accounts a refusal may name to this token: its own, never the others'."""
        return known if self.accounts is None else self.accounts


EVERY_ACCOUNT = Scope()

# The API document's security schemes: the ingest tokens and the Gateway's webhook secret, each
# sent as "Authorization: Bearer <secret>"; a route names the one it checks (``requires``).
INGEST_SCHEME = "ingestToken"
WEBHOOK_SCHEME = "webhookSecret"
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    INGEST_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "description": "One of INGEST_TOKENS, or an [ingest.NAME] token of the accounts file "
        "(which enqueues on, and sees the jobs of, its own accounts only)",
    },
    WEBHOOK_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "description": "WEBHOOK_SECRET, as the Gateway sends it",
    },
}


def requires(scheme: str) -> dict[str, Any]:
    """The part of a route's OpenAPI operation that says which secret it checks."""
    return {"security": [{scheme: []}]}


class BearerTokens:
    """A FastAPI dependency that lets a request through only with one of the tokens, and says
    which token's ``Scope`` it has.

    Every token is compared, whatever matched, so the time taken says nothing about which
    token (or how much of one) was right. No token is ever logged or echoed.
    """

    def __init__(self, tokens: Iterable[str], *, scoped: Iterable[tuple[str, Scope]] = ()) -> None:
        grants = [(token, EVERY_ACCOUNT) for token in tokens] + list(scoped)
        self._grants = tuple((token.encode(), scope) for token, scope in grants)

    def __call__(self, request: Request) -> Scope:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        candidate = given.strip().encode("utf-8", "replace")
        found: Scope | None = None
        for token, scope in self._grants:
            if hmac.compare_digest(candidate, token):
                found = scope
        if scheme.lower() != "bearer" or found is None:
            raise Unauthorized
        return found


def scoped_tokens(
    clients: Iterable[IngestClient], unscoped: Iterable[str], *, source: Path | None
) -> list[tuple[str, Scope]]:
    """Each ``[ingest.NAME]`` token, read now, with its accounts. A token that is missing, weak,
    or the same as another is a ConfigError naming the table, never the token."""
    seen = set(unscoped)
    found = []
    for client in clients:
        where = f"accounts file {source}: ingest {client.name!r}"
        token = client.token()
        field = "token_env" if client.token_env is not None else "token_file"
        if not token:
            raise ConfigError(f"{where}: {field}: the variable is unset or the file unreadable")
        problem = token_problem(token)
        if problem:
            raise ConfigError(f"{where}: {field}: the token {problem}")
        if token in seen:
            raise ConfigError(f"{where}: {field}: the same token as another ingest token")
        seen.add(token)
        found.append((token, Scope(client.accounts)))
    return found
