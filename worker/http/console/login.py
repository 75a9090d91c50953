"""Logging in: the login form's own token, the Origin check, the brake, the session cookie.

The login page sets a short-lived pre-login cookie and echoes its token in the form (a double
submit): another site can make a browser post the form but can neither read the token nor send
the cookie (SameSite=Strict). A post without the token, or from another origin, is refused with
403 before the brake or the password is looked at, so it never counts as a failed attempt: no
page the operator opens can slow their own logins down.
"""

from __future__ import annotations

import math
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from worker.http.console.auth import COOKIE, COOKIE_PATH, SESSION_TTL_S, same_secret
from worker.http.console.components import Console
from worker.http.console.render import LOGIN_PATH, Refused, first, page
from worker.logs import get_logger

log = get_logger(__name__)
LOGIN_COOKIE = "msgworker_login"
# How long a login page's form stays good: long enough to type a password, then reload.
LOGIN_FORM_TTL_S = 600
STALE_FORM = "This login form expired or was not sent from this page: log in again."
WRONG_PASSWORD = "Wrong password."  # noqa: S105 - a message, not a password
BRAKED = "Too many wrong passwords from this address: try again in a few seconds."


def login_page(console: Console, request: Request, status: int, error: str | None) -> Response:
    """The login form with a new token, and the pre-login cookie holding it."""
    token = secrets.token_urlsafe(32)
    response = page("login.html", status, error=error, token=token)
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=LOGIN_FORM_TTL_S,
        path=LOGIN_PATH,
        secure=console.secure(request),
        httponly=True,
        samesite="strict",
    )
    return response


def same_origin(origin: str | None, host: str | None) -> bool:
    """Whether a request's ``Origin`` (if it has one) names the host it was sent to.

    Compared with the ``Host`` the browser sent rather than with a scheme and address serve
    sees, which a TLS proxy in front changes; a proxy must pass ``Host`` on."""
    if origin is None:
        return True  # not a browser, or one that sends no Origin: the token still decides
    if not host:
        return False
    try:
        parts = urlsplit(origin)
    except ValueError:  # an unbalanced IPv6 bracket
        return False
    return parts.scheme in {"http", "https"} and parts.netloc.lower() == host.lower()


def log_in(console: Console, request: Request, form: dict[str, list[str]]) -> Response:
    """Checks a login form in order: origin, token, brake, password; a session if all pass."""
    if not same_origin(request.headers.get("origin"), request.headers.get("host")):
        raise Refused(403, "The login form was sent from another site: nothing was checked.")
    cookie = request.cookies.get(LOGIN_COOKIE)
    if cookie is None or not same_secret(first(form, "csrf"), cookie):
        return login_page(console, request, 403, STALE_FORM)
    address = console.client_address(request)
    wait_s = console.brake.wait_s(address)
    if wait_s is not None:
        response = login_page(console, request, 429, BRAKED)
        response.headers["Retry-After"] = str(math.ceil(wait_s))
        return response
    if not console.password.matches(first(form, "password") or ""):
        console.brake.failed(address)
        log.warning("console.login_refused", client=address)
        return login_page(console, request, 401, WRONG_PASSWORD)
    session = console.sessions.create()
    log.info("console.login", client=address)
    response = RedirectResponse("/console", 303)
    response.set_cookie(
        COOKIE,
        session.id,
        max_age=SESSION_TTL_S,
        path=COOKIE_PATH,
        secure=console.secure(request),
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
    return response
