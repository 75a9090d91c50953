"""The web console under test: a serve process with a password, logging in, parked jobs."""

from __future__ import annotations

import re

import httpx

PASSWORD = "night-shift-password-42"  # noqa: S105 - a test password
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login_form(http: httpx.Client, password: str = PASSWORD) -> dict[str, str]:
    """A login form as the login page makes it (its token; the client now holds the cookie)."""
    page = http.get("/console/login")
    assert page.status_code == 200, page.text
    return {"password": password, "csrf": csrf_of(page.text)}


def login(http: httpx.Client, password: str = PASSWORD) -> str:
    """Log in; returns the session's CSRF token (read from the overview's forms)."""
    answer = http.post("/console/login", data=login_form(http, password))
    assert answer.status_code == 303, answer.text
    overview = http.get("/console")
    assert overview.status_code == 200, overview.text
    return csrf_of(overview.text)


def log_in(page, url: str) -> None:
    """Log a browser page in through the login form (it starts with no session)."""
    page.goto(f"{url}/console")
    assert page.url.endswith("/console/login")  # no session: the login page
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(f"{url}/console")
