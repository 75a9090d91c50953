"""The console's sessions and login brake against a real Redis: a session lives 12 hours and no
longer, and the brake counts only the failures of its 5-minute window."""

from __future__ import annotations

import time

import pytest

from tests.support.jobs import KEYS
from tests.support.processes import wait_for
from worker.http.console.auth import SESSION_TTL_S, Password, Sessions
from worker.http.console.brake import FAILURES_MAX, SLOT_S, WINDOW_S, LoginBrake

ADDRESS = "203.0.113.7"


@pytest.fixture
def sessions(redis_client):
    return Sessions(redis_client, KEYS, Password("night-shift-password-42"))


def test_a_session_lasts_twelve_hours_from_login(sessions, redis_client):
    """The session's record in Redis expires 12 hours after login; then the cookie finds none."""
    assert SESSION_TTL_S == 12 * 3600
    session = sessions.create()
    [key] = redis_client.keys(KEYS.console_session("*"))
    assert SESSION_TTL_S - 5 <= redis_client.ttl(key) <= SESSION_TTL_S
    assert sessions.get(session.id) == session
    redis_client.pexpire(key, 1)  # the twelve hours, gone by
    wait_for(lambda: sessions.get(session.id) is None, timeout_s=2, what="the session ended")


def test_failures_older_than_the_window_do_not_slow_an_address(redis_client):
    """Ten failures more than 5 minutes old leave the address free; ten within it slow it to
    one attempt per slot."""
    brake = LoginBrake(redis_client, KEYS)
    failed = KEYS.console_login_failed(ADDRESS)
    old = time.time() - WINDOW_S - 1
    redis_client.zadd(failed, {f"old-{n}": old for n in range(FAILURES_MAX)})
    assert brake.wait_s(ADDRESS) is None
    assert brake.wait_s(ADDRESS) is None  # and no slot was taken
    for _ in range(FAILURES_MAX):
        brake.failed(ADDRESS)
    wait = brake.wait_s(ADDRESS)
    assert wait is not None
    assert 0 < wait <= SLOT_S
    assert 0 < redis_client.ttl(failed) <= WINDOW_S  # the record goes with the window
