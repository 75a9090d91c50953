"""The console's login under attack, against a real uvicorn and a real Redis: the brake slows an
address instead of locking it out, the login form's own token and the Origin check, client
addresses and HTTPS believed only from the proxies FORWARDED_ALLOW_IPS lists, Secure cookies.

serve listens on 127.0.0.1; a client bound to 127.0.0.2 plays the listed proxy on another host,
one bound to 127.0.0.1 a peer that is not listed.
"""

from __future__ import annotations

import math
import time

import httpx
import pytest

from tests.support.console import PASSWORD, csrf_of
from tests.support.processes import wait_for
from tests.support.serve import Service
from worker.http.console.brake import FAILURES_MAX, SLOT_S

pytestmark = pytest.mark.processes  # every test here runs real child processes

PROXY = "127.0.0.2"  # listed in FORWARDED_ALLOW_IPS
PEER = "127.0.0.1"  # not listed
SESSION = "msgworker_console="
LOGIN = "msgworker_login="
WRONG = "not-the-password"


@pytest.fixture(scope="module")
def service(redis_server, tmp_path_factory):
    server = Service(
        tmp_path_factory.mktemp("console-login"),
        broker_url=redis_server.url,
        console_password=PASSWORD,
        forwarded_allow_ips=PROXY,
    ).start()
    yield server
    server.stop()
    assert PASSWORD not in server.log.read_text()


def client(service: Service, local: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=local)
    return httpx.Client(base_url=service.url, transport=transport, timeout=10)


@pytest.fixture
def proxy(service, redis_url):
    with client(service, PROXY) as http:
        yield http


@pytest.fixture
def peer(service, redis_url):
    with client(service, PEER) as http:
        yield http


def set_cookies(answer: httpx.Response, name: str) -> list[str]:
    return [c for c in answer.headers.get_list("set-cookie") if c.startswith(name)]


def attempt(
    http: httpx.Client, password: str, *, token: bool = True, **headers: str
) -> httpx.Response:
    """One login as a browser makes it: the login page, then its form with the page's cookie
    (sent by hand, so a Secure cookie goes back over the test's plain HTTP too)."""
    http.cookies.clear()
    page = http.get("/console/login", headers=headers)
    assert page.status_code == 200, page.text
    form = {"password": password}
    if token:
        form["csrf"] = csrf_of(page.text)
        headers = {**headers, "Cookie": f"{LOGIN}{form['csrf']}"}
    http.cookies.clear()
    return http.post("/console/login", data=form, headers=headers)


def brake(http: httpx.Client, **headers: str) -> float:
    """Fails FAILURES_MAX logins; returns when the last failure was answered."""
    for _ in range(FAILURES_MAX):
        assert attempt(http, WRONG, **headers).status_code == 401
    return time.monotonic()


def test_a_slowed_address_gets_one_attempt_per_slot(proxy):
    """After FAILURES_MAX failures an address gets one attempt per SLOT_S; the others are 429
    with a Retry-After within the slot (and are not compared, not counted)."""
    client_ip = {"X-Forwarded-For": "203.0.113.10"}
    brake(proxy, **client_ip)
    admitted: list[float] = []
    deadline = time.monotonic() + 2 * SLOT_S + 3
    while len(admitted) < 2 and time.monotonic() < deadline:
        answer = attempt(proxy, WRONG, **client_ip)
        if answer.status_code == 429:
            assert 1 <= int(answer.headers["retry-after"]) <= math.ceil(SLOT_S)
            time.sleep(0.05)
            continue
        assert answer.status_code == 401
        admitted.append(time.monotonic())
    assert len(admitted) == 2, "a slowed address got fewer than one attempt per slot"
    assert admitted[1] - admitted[0] >= SLOT_S - 0.2


def test_the_right_password_waits_at_most_one_slot(proxy):
    """However long the guessing went on, the right password gets in within one slot (today's
    lock-out refused it for 300 s, renewed by every guess)."""
    client_ip = {"X-Forwarded-For": "203.0.113.11"}
    braked_at = brake(proxy, **client_ip)
    assert attempt(proxy, PASSWORD, **client_ip).status_code == 429

    def logged_in() -> bool:
        return attempt(proxy, PASSWORD, **client_ip).status_code == 303

    wait_for(logged_in, timeout_s=SLOT_S + 2, interval_s=0.1, what="the right password let in")
    assert time.monotonic() - braked_at <= SLOT_S + 2


def test_a_login_without_the_form_token_is_403_and_not_counted(peer):
    """A post without the login page's token (or with another's) is 403 and no failed attempt:
    three times the brake's worth of them, then the right password gets straight in."""
    for _ in range(3 * FAILURES_MAX):
        answer = attempt(peer, WRONG, token=False)
        assert answer.status_code == 403
        assert SESSION not in answer.headers.get("set-cookie", "")
    forged = peer.post(
        "/console/login",
        data={"password": WRONG, "csrf": "a" * 43},
        headers={"Cookie": f"{LOGIN}{'b' * 43}"},
    )
    assert forged.status_code == 403
    assert attempt(peer, PASSWORD).status_code == 303


def test_a_login_from_another_origin_is_403_and_not_counted(peer, service):
    """A post whose Origin is another site's is 403 and no failed attempt; the console's own
    origin logs in."""
    for _ in range(3 * FAILURES_MAX):
        answer = attempt(peer, WRONG, Origin="https://evil.example")
        assert answer.status_code == 403
        assert "another site" in answer.text
    assert attempt(peer, WRONG, Origin="null").status_code == 403
    assert attempt(peer, PASSWORD, Origin=service.url).status_code == 303


def test_forwarded_addresses_count_only_from_listed_proxies(peer, proxy):
    """X-Forwarded-For from a peer FORWARDED_ALLOW_IPS does not list is ignored: guesses under
    as many forwarded addresses are braked as one's; through the listed proxy each is its own."""
    for n in range(FAILURES_MAX):
        forwarded = {"X-Forwarded-For": f"198.51.100.{n}"}
        assert attempt(peer, WRONG, **forwarded).status_code == 401
        assert attempt(proxy, WRONG, **forwarded).status_code == 401
    assert attempt(peer, WRONG, **{"X-Forwarded-For": "198.51.100.99"}).status_code == 429
    assert attempt(proxy, WRONG, **{"X-Forwarded-For": "198.51.100.99"}).status_code == 401


def test_cookies_are_secure_over_https_seen_through_a_listed_proxy(proxy, peer):
    """X-Forwarded-Proto: https from the listed proxy (on another host) makes the pre-login and
    session cookies Secure; the same header from an unlisted peer does not."""
    https = {"X-Forwarded-Proto": "https"}
    answer = attempt(proxy, PASSWORD, **https)
    assert answer.status_code == 303
    (session,) = set_cookies(answer, SESSION)
    assert "secure" in session.lower()
    login_page = proxy.get("/console/login", headers=https)
    assert "secure" in set_cookies(login_page, LOGIN)[0].lower()
    answer = attempt(peer, PASSWORD, **https)
    assert answer.status_code == 303
    (session,) = set_cookies(answer, SESSION)
    assert "secure" not in session.lower()


def test_cookie_secure_always_marks_cookies_secure_over_plain_http(redis_url, tmp_path):
    """COOKIE_SECURE=always: Secure cookies even where serve sees plain HTTP (TLS ends on a
    proxy it does not trust)."""
    server = Service(
        tmp_path, broker_url=redis_url, console_password=PASSWORD, cookie_secure="always"
    ).start()
    try:
        with client(server, PEER) as http:
            answer = attempt(http, PASSWORD)
            assert answer.status_code == 303
            (session,) = set_cookies(answer, SESSION)
            assert "secure" in session.lower()
    finally:
        server.stop()
