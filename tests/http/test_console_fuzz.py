"""Fuzzing the web console on a real uvicorn and Redis: no form and no query ever makes it
answer 500 or without its headers, and a request refused for its session or CSRF token changes
nothing in Redis."""

from __future__ import annotations

import hashlib
from urllib.parse import quote, urlencode

import httpx
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.console import PASSWORD, login
from tests.support.jobs import park
from tests.support.processes import RedisServer
from tests.support.serve import Service
from worker.service.runtime import Runtime
from worker.settings import Settings

pytestmark = pytest.mark.processes  # every test here runs real child processes

MESSAGE = {"to": "905321234567", "type": "text", "text": {"body": "hello"}}
ACTIONS = [
    "/console/logout",
    "/console/dead-letters/replay",
    "/console/dead-letters/purge",
    "/console/accounts/{account}/halt",
    "/console/accounts/{account}/resume",
    "/console/accounts/{account}/templates/release",
]
names = st.sampled_from(
    [
        *("csrf", "id", "scope", "code", "account", "rate", "reason", "confirmed", "password"),
        *("name", "language"),
    ]
)
values = st.text(max_size=40) | st.sampled_from(
    ["ids", "code", "BILL_001", "yes", "default", "0", "-1", "nan", "inf", "1e308", "a" * 32]
)
forms = st.lists(st.tuples(names, values), max_size=8)
PAGES = [
    "/console",
    "/console/login",
    "/console/dead-letters",
    "/console/dead-letters/{segment}",
    "/console/replays/{segment}",
    "/console/jobs",
    "/console/job-list",
    "/console/runbooks",
    "/console/accounts/{segment}/halt",
    "/console/{segment}",
]
query_names = st.sampled_from(
    ["page_no", "start", "listing", "account", "code", "done", "n", "id"]
) | st.text(max_size=10)
query_values = (
    st.text(max_size=80)
    | st.integers().map(str)
    | st.sampled_from(
        [
            *("purged", "BILL_001", "default", "held", "due", "scheduled", "in-flight"),
            *("1e3", "0x10", " 1", "9" * 40, "50000000", "999999"),
        ]
    )
)
queries = st.lists(st.tuples(query_names, query_values), max_size=6)
accounts = st.sampled_from(["default", "nobody"]) | st.text(min_size=1, max_size=20)
bodies = st.binary(max_size=200)


def state(client: redis.Redis) -> str:
    """A digest of everything in Redis except the console's own sessions."""
    digest = hashlib.sha256()
    for key in sorted(client.keys("*")):
        if b":console:" in key:
            continue
        digest.update(key + b"\0" + (client.dump(key) or b""))
    return digest.hexdigest()


def served(tmp_path_factory):
    """A served console over a Redis holding a halted account and parked jobs."""
    workdir = tmp_path_factory.mktemp("console-fuzz")
    server = RedisServer(workdir)
    server.start()
    runtime = Runtime(Settings(broker_url=server.url, _env_file=None))
    for _ in range(3):
        park(runtime, runtime.producer.enqueue(MESSAGE))
    # The parking's rate-limit slots expire by themselves within a minute: a digest taken across
    # that moment would see a change no request made.
    keys = runtime.keys
    runtime.redis.delete(keys.window("default", "sec"), keys.window("default", "min"))
    runtime.switches.halt("default", reason="fuzzing")
    service = Service(workdir, broker_url=server.url, console_password=PASSWORD).start()
    client = redis.Redis.from_url(server.url)
    http = httpx.Client(base_url=service.url, timeout=30)
    forged = httpx.Client(
        base_url=service.url, timeout=30, cookies={"msgworker_console": "forged-session-id"}
    )
    csrf = login(http)
    yield http, client, csrf, forged
    forged.close()
    http.close()
    client.close()
    runtime.close()
    service.stop()
    server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from served(tmp_path_factory)


@pytest.fixture(scope="module")
def changing_stack(tmp_path_factory):
    """Its own Redis: replays this one starts run on in the background."""
    yield from served(tmp_path_factory)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    action=st.sampled_from(ACTIONS),
    account=accounts,
    form=forms,
    raw=st.none() | bodies,
    logged_in=st.booleans(),
)
def test_a_refused_post_is_never_a_500_and_changes_nothing(
    stack, action, account, form, raw, logged_in
):
    """Any form without the session's CSRF token (logged in or not): 4xx, Redis unchanged."""
    http, client, csrf, forged = stack
    form = [(name, value) for name, value in form if value != csrf]
    path = action.format(account=quote(account, safe=""))
    sender = http if logged_in else forged
    before = state(client)
    body = urlencode(form) if raw is None else raw
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    answer = sender.post(path, content=body, headers=headers)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    assert state(client) == before


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(action=st.sampled_from(ACTIONS[1:]), account=accounts, form=forms)
def test_a_post_with_the_token_and_any_fields_is_never_a_500(changing_stack, action, account, form):
    """With the right CSRF token, any other fields: an answer, refused or done, never a 500."""
    http, _, csrf, _ = changing_stack
    path = action.format(account=quote(account, safe=""))
    body = urlencode([*form, ("csrf", csrf)])
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    answer = http.post(path, content=body, headers=headers, follow_redirects=False)
    assert answer.status_code < 500, (answer.status_code, answer.text)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(PAGES),
    segment=st.text(min_size=1, max_size=40),
    query=queries,
    logged_in=st.booleans(),
)
def test_a_page_with_any_query_is_never_a_500_and_keeps_its_headers(
    stack, path, segment, query, logged_in
):
    """Any page with any query: an answer below 500 with the console's headers, Redis unchanged."""
    http, client, _, forged = stack
    sender = http if logged_in else forged
    before = state(client)
    answer = sender.get(path.format(segment=quote(segment, safe="")), params=query)
    assert answer.status_code < 500, (answer.status_code, answer.text)
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert state(client) == before
