"""Who may use the console: the password, the session cookie and its CSRF token.

A session is a random id (256 bits) in an HttpOnly, SameSite=Strict cookie; Redis keeps, under
the SHA-256 of the password's digest and that id, for ``SESSION_TTL_S``, the session's CSRF
token (so a new password ends every session). Kept server-side
rather than signed into the cookie so that logging out ends the session everywhere at once,
several serve processes share it through Redis alone, and no key derived from the password
needs to exist: Redis never holds the password or a cookie's value.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import redis

from worker.store.keys import Keys

COOKIE = "msgworker_console"
COOKIE_PATH = "/console"
# A night shift, then log in again.
SESSION_TTL_S = 12 * 3600


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "replace")).digest()


def same_secret(given: str | None, expected: str) -> bool:
    """Whether a token a request carries is the expected one, compared in constant time."""
    return given is not None and hmac.compare_digest(_digest(given), _digest(expected))


class Password:
    """The console's password, compared in constant time (as SHA-256 digests, so neither the
    length nor any prefix of it shows in the time taken)."""

    def __init__(self, password: str) -> None:
        self._digest = _digest(password)

    def matches(self, given: str) -> bool:
        return hmac.compare_digest(_digest(given), self._digest)

    @property
    def fingerprint(self) -> bytes:
        return self._digest


@dataclass(frozen=True)
class Session:
    id: str
    csrf: str

    def csrf_matches(self, given: str | None) -> bool:
        return same_secret(given, self.csrf)


class Sessions:
    """Console sessions in Redis, each with its own CSRF token and a fixed lifetime."""

    def __init__(self, client: redis.Redis, keys: Keys, password: Password) -> None:
        self._redis = client
        self._keys = keys
        # Sessions are found under the password's digest too: a new password ends them all.
        self._scope = password.fingerprint

    def _key(self, session_id: str) -> str:
        digest = hashlib.sha256(self._scope + session_id.encode()).hexdigest()
        return self._keys.console_session(digest)

    def create(self) -> Session:
        session = Session(id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32))
        key = self._key(session.id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"csrf": session.csrf, "since": repr(time.time())})
        pipe.expire(key, SESSION_TTL_S)
        pipe.execute()
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id or len(session_id) > 128 or not session_id.isascii():
            return None
        csrf = self._redis.hget(self._key(session_id), "csrf")
        return Session(id=session_id, csrf=str(csrf)) if csrf else None

    def end(self, session_id: str) -> None:
        self._redis.delete(self._key(session_id))
