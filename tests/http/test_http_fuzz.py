"""Fuzzing the HTTP ingest API on a real uvicorn: no body or header ever makes it answer 500,
and a refused request changes nothing in Redis."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.processes import RedisServer
from tests.support.serve import TOKEN, Service

pytestmark = pytest.mark.processes  # every test here runs real child processes

MESSAGE = {"to": "905321234567", "type": "text", "text": {"body": "hello"}}
REFUSALS = {400, 401, 404, 405, 413, 422}
ACCEPTED = {200, 202}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)
# Shapes near the real ones, so the fuzzing reaches deep into validation.
field_names = st.sampled_from(
    ["message", "idempotency_key", "send_at", "expires_at", "ttl_s", "account", "priority",
     "to", "type", "text", "body", "template", "name", "language", "code", "image", "link",
     "messages", "interactive", "action", "buttons"]
)  # fmt: skip
near_values = st.recursive(
    json_values
    | st.sampled_from(
        ["text", "template", "image", "905321234567", "high", "2030-01-01T00:00:00Z"]
    ),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(field_names, children, max_size=6)
    ),
    max_leaves=25,
)
near_messages = st.builds(
    lambda base, extra: {**base, **extra},
    st.just(MESSAGE),
    st.dictionaries(field_names, near_values, max_size=3),
)
bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    near_values.map(lambda v: json.dumps(v).encode()),
    near_messages.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(field_names, near_values, max_size=6).map(
        lambda v: json.dumps({"message": MESSAGE, **v}).encode()
    ),
    st.lists(st.one_of(near_messages, near_values), max_size=5).map(
        lambda v: json.dumps({"messages": v}).encode()
    ),
    st.binary(max_size=200),
)
header_values = st.binary(max_size=60).map(lambda b: bytes(c for c in b if c >= 0x21 and c != 0x7F))
authorizations = st.one_of(
    st.just(f"Bearer {TOKEN}".encode()),
    header_values,
    header_values.filter(bool).map(lambda v: b"Bearer " + v),
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("fuzz")
    server = RedisServer(workdir)
    server.start()
    service = Service(workdir, broker_url=server.url, ingest_tokens=TOKEN).start()
    client = redis.Redis.from_url(server.url)
    http = httpx.Client(base_url=service.url, timeout=30)
    yield http, client
    http.close()
    client.close()
    service.stop()
    server.stop()


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(["/v1/messages", "/v1/messages/batch"]),
    body=bodies,
    authorization=authorizations,
    idempotency_key=st.none() | header_values,
    content_type=st.none()
    | st.sampled_from([b"application/json", b"text/plain", b"application/x-www-form-urlencoded"])
    | header_values,
)
def test_no_body_or_header_makes_a_500_and_refusals_write_nothing(
    stack, path, body, authorization, idempotency_key, content_type
):
    http, client = stack
    headers = {"Authorization": authorization}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    if content_type is not None:
        headers["Content-Type"] = content_type
    before = client.dbsize()
    answer = http.post(path, content=body, headers=headers)
    assert answer.status_code in REFUSALS | ACCEPTED, (answer.status_code, answer.text)
    answer.json()  # every answer is JSON
    if answer.status_code in REFUSALS:
        assert client.dbsize() == before


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(job_id=st.text(min_size=1, max_size=300).filter(lambda s: s not in {".", ".."}))
@example(job_id="0/")  # once answered 307, a redirect to /v1/jobs/0
def test_any_job_id_is_a_json_404_never_a_500(stack, job_id):
    http, _ = stack
    answer = http.get(
        f"/v1/jobs/{quote(job_id, safe='')}", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert answer.status_code in {404, 200}, answer.text
    answer.json()
