"""The console's components, built once per serve process and handed to its pages and actions."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from worker.http.console.auth import COOKIE, Password, Session, Sessions
from worker.http.console.brake import LoginBrake
from worker.http.console.chartdata import ChartSampler
from worker.http.console.render import NeedsLogin, Refused, first
from worker.http.console.replays import Replays
from worker.observe.status import accounts_to_report
from worker.service.runtime import Runtime


@dataclass(frozen=True)
class Console:
    """The console's components, built once per serve process."""

    runtime: Runtime
    password: Password
    sessions: Sessions
    brake: LoginBrake
    replays: Replays
    chart: ChartSampler
    # COOKIE_SECURE=always: TLS ends on a proxy serve does not trust, so HTTPS is not seen.
    always_secure: bool

    def secure(self, request: Request) -> bool:
        """Whether cookies set in answer to this request are marked Secure."""
        return self.always_secure or request.url.scheme == "https"

    @staticmethod
    def client_address(request: Request) -> str:
        """The client's address: the peer's, or what a proxy in FORWARDED_ALLOW_IPS says."""
        return request.client.host if request.client else "unknown"

    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))

    def require(self, request: Request) -> Session:
        """The session of a page's request; without one the browser goes to the login page."""
        session = self.session(request)
        if session is None:
            raise NeedsLogin
        return session

    def authorise(self, request: Request, form: dict[str, list[str]]) -> Session:
        """The session of a state change, which must carry the session's CSRF token."""
        session = self.session(request)
        if session is None:
            raise Refused(403, "Log in first: nothing was changed.")
        if not session.csrf_matches(first(form, "csrf")):
            raise Refused(403, "The form's CSRF token is missing or stale: nothing was changed.")
        return session

    def account(self, name: str) -> str:
        """An account the deployment knows (or one with a halt, breaker or held jobs)."""
        if name not in accounts_to_report(
            self.runtime.redis, self.runtime.keys, self.runtime.known_accounts
        ):
            raise Refused(404, "No such account.")
        return name
