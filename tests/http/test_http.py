"""worker/http/: the HTTP front door on a real uvicorn (``msgworker serve``) and a real Redis."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import httpx
import pytest

from tests.support.processes import RedisServer, free_port, wait_for
from tests.support.serve import BIN, OTHER_TOKEN, TOKEN, Service
from worker.http.schemas import JobView

pytestmark = pytest.mark.processes  # every test here runs real child processes

MESSAGE = {"to": "905321234567", "type": "text", "text": {"body": "hello"}}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TIMEOUT_S = 1.0


@pytest.fixture
def service(redis_url, tmp_path):
    """serve with ingest on (two tokens, as during a rotation)."""
    server = Service(
        tmp_path,
        broker_url=redis_url,
        ingest_tokens=f"{TOKEN}, {OTHER_TOKEN}",
        redis_timeout_s=str(TIMEOUT_S),
    ).start()
    yield server
    server.stop()


@pytest.fixture
def http(service):
    with httpx.Client(base_url=service.url, timeout=10) as client:
        yield client


def _job_keys(redis_client) -> list[str]:
    return [k for k in redis_client.keys("*") if ":job:" in k and not k.endswith(":history")]


# ---------------------------------------------------------------- health, metrics, parts


def test_health_readiness_and_metrics_answer(http):
    """/healthz and /readyz say 200 with Redis up; /metrics counts requests by route template."""
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").status_code == 200
    http.get("/v1/jobs/0123456789abcdef0123456789abcdef", headers=AUTH)
    text = http.get("/metrics").text
    assert 'msgworker_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="/v1/jobs/{job_id}",status="404"' in text
    assert "0123456789abcdef" not in text


def test_unknown_paths_count_as_unmatched(http):
    """A scan of random paths adds one label value, not one per path."""
    for n in range(5):
        assert http.get(f"/nothing/{n}").status_code == 404
    text = http.get("/metrics").text
    assert 'route="unmatched",status="404"} 5.0' in text
    assert "/nothing/" not in text


def test_ingest_is_off_without_tokens(redis_url, tmp_path):
    """No INGEST_TOKENS: the ingest paths answer 404 (even with a token), health answers."""
    server = Service(tmp_path, broker_url=redis_url).start()
    try:
        with httpx.Client(base_url=server.url) as http:
            assert http.post("/v1/messages", json=MESSAGE, headers=AUTH).status_code == 404
            assert http.post("/v1/messages/batch", json={"messages": [MESSAGE]}).status_code == 404
            assert http.get("/v1/jobs/x", headers=AUTH).status_code == 404
            assert http.get("/healthz").status_code == 200
            assert not any(p.startswith("/v1/") for p in http.get("/openapi.json").json()["paths"])
    finally:
        server.stop()


def test_service_starts_with_redis_down_and_becomes_ready(tmp_path):
    """Redis down at start: /healthz 200, /readyz 503, ingest 503; ready once Redis answers;
    never opens METRICS_PORT."""
    redis_server = RedisServer(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    metrics_port = free_port()
    server = Service(
        tmp_path,
        broker_url=redis_server.url,
        ingest_tokens=TOKEN,
        redis_timeout_s=str(TIMEOUT_S),
        metrics_port=str(metrics_port),
    ).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.get("/healthz").status_code == 200
            assert http.get("/readyz").status_code == 503
            assert http.post("/v1/messages", json=MESSAGE, headers=AUTH).status_code == 503
            redis_server.start()
            wait_for(lambda: http.get("/readyz").status_code == 200, what="ready")
            assert http.post("/v1/messages", json=MESSAGE, headers=AUTH).status_code == 202
        with pytest.raises(OSError):  # noqa: PT011 - refused, whichever errno
            socket.create_connection(("127.0.0.1", metrics_port), timeout=1).close()
    finally:
        server.stop()
        redis_server.stop()


# ---------------------------------------------------------------- auth


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong_token_0123456789"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": "Bearer"},
    ],
)
def test_no_valid_bearer_token_is_401_and_enqueues_nothing(http, redis_client, headers):
    """Every ingest path wants one of the tokens; a refusal writes nothing."""
    answer = http.post("/v1/messages", json=MESSAGE, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert (
        http.post("/v1/messages/batch", json={"messages": [MESSAGE]}, headers=headers).status_code
        == 401
    )
    assert http.get("/v1/jobs/x", headers=headers).status_code == 401
    assert redis_client.dbsize() == 0


def test_both_rotated_tokens_are_accepted_and_none_is_logged(http, service):
    """During a rotation the old and the new token work; neither ever reaches the log."""
    for token in (TOKEN, OTHER_TOKEN):
        answer = http.post(
            "/v1/messages", json=MESSAGE, headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 202
    service.stop()
    log = service.log.read_text()
    assert "http.starting" in log
    assert TOKEN not in log
    assert OTHER_TOKEN not in log


# ---------------------------------------------------------------- POST /v1/messages


def test_a_bare_payload_is_enqueued_202(http, redis_client):
    """202 {"id"}; the job is in Redis, queued, with the normalised payload."""
    answer = http.post("/v1/messages", json={**MESSAGE, "to": "+90 532 123 45 67"}, headers=AUTH)
    assert answer.status_code == 202
    (job_id,) = answer.json().values()
    assert answer.json() == {"id": job_id}
    record = redis_client.hgetall(f"msgworker:job:{job_id}")
    assert record["state"] == "queued"
    assert json.loads(record["message"])["to"] == "905321234567"
    assert record["priority"] == "normal"


def test_an_envelope_carries_its_options(http, redis_client):
    """send_at schedules, priority and account are stored."""
    envelope = {
        "message": MESSAGE,
        "send_at": "2030-01-01T09:00:00+00:00",
        "priority": "high",
        "account": "default",
        "ttl_s": 3600,
    }
    answer = http.post("/v1/messages", json=envelope, headers=AUTH)
    if answer.status_code == 422:  # send_at must be within a year of now
        envelope["send_at"] = time.strftime(
            "%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3600)
        )
        answer = http.post("/v1/messages", json=envelope, headers=AUTH)
    assert answer.status_code == 202, answer.text
    record = redis_client.hgetall(f"msgworker:job:{answer.json()['id']}")
    assert record["state"] == "scheduled"
    assert record["priority"] == "high"


def test_a_known_idempotency_key_is_200_with_the_first_id(http, redis_client):
    """The header sets the key: the second request answers 200 duplicate, writes nothing."""
    headers = {**AUTH, "Idempotency-Key": "order-42"}
    first = http.post("/v1/messages", json=MESSAGE, headers=headers)
    assert first.status_code == 202
    again = http.post("/v1/messages", json={**MESSAGE, "text": {"body": "other"}}, headers=headers)
    assert again.status_code == 200
    assert again.json() == {"id": first.json()["id"], "duplicate": True}
    by_body = http.post(
        "/v1/messages", json={"message": MESSAGE, "idempotency_key": "order-42"}, headers=AUTH
    )
    assert by_body.json() == {"id": first.json()["id"], "duplicate": True}
    assert len(_job_keys(redis_client)) == 1


def test_a_header_key_different_from_the_body_key_is_refused(http, redis_client):
    headers = {**AUTH, "Idempotency-Key": "a"}
    answer = http.post(
        "/v1/messages", json={"message": MESSAGE, "idempotency_key": "b"}, headers=headers
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "idempotency_key"
    assert redis_client.dbsize() == 0


def test_invalid_is_422_naming_every_bad_field_and_enqueues_nothing(http, redis_client):
    """Every problem of the message and of the envelope, each with its dotted field."""
    envelope = {
        "message": {"to": "call me", "type": "text", "text": {"body": ""}},
        "priority": "urgent",
        "ttl_s": -1,
    }
    answer = http.post("/v1/messages", json=envelope, headers=AUTH)
    assert answer.status_code == 422
    fields = {e["field"] for e in answer.json()["errors"]}
    assert fields == {"message.to", "message.text.body", "priority", "ttl_s"}
    assert all(set(e) == {"field", "error"} for e in answer.json()["errors"])
    assert redis_client.dbsize() == 0


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"", b"[" * 100_000, b'{"a": NaN}'])
def test_a_body_that_is_not_json_is_400(http, redis_client, body):
    answer = http.post("/v1/messages", content=body, headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "body"
    assert redis_client.dbsize() == 0


def test_a_body_over_the_limit_is_413(http, redis_client):
    """Over 1 MiB for one message (declared or streamed), over 16 MiB for a batch."""
    big = json.dumps({**MESSAGE, "pad": "x" * (1 << 20)}).encode()
    assert http.post("/v1/messages", content=big, headers=AUTH).status_code == 413

    def chunks():
        for _ in range(20):
            yield b" " * 65536

    assert http.post("/v1/messages", content=chunks(), headers=AUTH).status_code == 413
    huge = b" " * (16 * 1024 * 1024 + 1)
    assert http.post("/v1/messages/batch", content=huge, headers=AUTH).status_code == 413
    assert redis_client.dbsize() == 0


def test_redis_stopped_is_503_with_retry_after_within_the_timeout(tmp_path):
    """Redis stopped or frozen: 503 and Retry-After in under REDIS_TIMEOUT_S + 1 s, every path."""
    (tmp_path / "redis").mkdir()
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    server = Service(
        tmp_path, broker_url=redis_server.url, ingest_tokens=TOKEN, redis_timeout_s=str(TIMEOUT_S)
    ).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.post("/v1/messages", json=MESSAGE, headers=AUTH).status_code == 202
            assert redis_server.pid is not None
            os.kill(redis_server.pid, signal.SIGSTOP)  # hung: connected, no answer
            for method, path, body in (
                ("POST", "/v1/messages", MESSAGE),
                ("POST", "/v1/messages/batch", {"messages": [MESSAGE]}),
                ("GET", "/v1/jobs/abc", None),
            ):
                started = time.monotonic()
                answer = http.request(method, path, json=body, headers=AUTH)
                elapsed = time.monotonic() - started
                assert answer.status_code == 503, (path, answer.text)
                assert answer.headers["retry-after"] == "1"
                assert elapsed < TIMEOUT_S + 1, (path, elapsed)
            os.kill(redis_server.pid, signal.SIGCONT)
            redis_server.stop()  # gone: refused at once
            started = time.monotonic()
            answer = http.post("/v1/messages", json=MESSAGE, headers=AUTH)
            assert answer.status_code == 503
            assert time.monotonic() - started < TIMEOUT_S + 1
            assert http.get("/readyz").status_code == 503
            assert http.get("/healthz").status_code == 200
    finally:
        if redis_server.pid is not None:
            os.kill(redis_server.pid, signal.SIGCONT)
        server.stop()
        redis_server.stop()


# ---------------------------------------------------------------- POST /v1/messages/batch


def test_a_batch_is_enqueued_202_with_ids_in_order(http, redis_client):
    """Ids in the order given; an item whose key is known answers that key's first id."""
    known = http.post("/v1/messages", json=MESSAGE, headers={**AUTH, "Idempotency-Key": "k2"})
    items = [
        MESSAGE,
        {"message": MESSAGE, "idempotency_key": "k1"},
        {"message": MESSAGE, "idempotency_key": "k2"},
    ]
    answer = http.post("/v1/messages/batch", json={"messages": items}, headers=AUTH)
    assert answer.status_code == 202
    ids = answer.json()["ids"]
    assert len(ids) == 3
    assert ids[2] == known.json()["id"]
    assert len(_job_keys(redis_client)) == 3


def test_a_batch_with_one_bad_index_is_422_naming_it_and_enqueues_nothing(http, redis_client):
    """Every bad index and field (relative to the envelope); nothing written."""
    items = [MESSAGE] * 5
    items[3] = {"message": {**MESSAGE, "to": "0"}, "priority": "x"}
    items[4] = {**MESSAGE, "type": "telegram"}
    answer = http.post("/v1/messages/batch", json={"messages": items}, headers=AUTH)
    assert answer.status_code == 422
    errors = answer.json()["errors"]
    assert {(e["index"], e["field"]) for e in errors} == {
        (3, "message.to"),
        (3, "priority"),
        (4, "message.type"),
    }
    assert redis_client.dbsize() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([MESSAGE], "body"),
        ({"messages": []}, "messages"),
        ({"messages": [MESSAGE] * 1001}, "messages"),
        ({"messages": MESSAGE}, "messages"),
        ({"messages": [MESSAGE], "extra": 1}, "extra"),
    ],
)
def test_a_malformed_batch_is_422_with_a_null_index(http, redis_client, body, field):
    answer = http.post("/v1/messages/batch", json=body, headers=AUTH)
    assert answer.status_code == 422
    assert answer.json() == {
        "errors": [{"index": None, "field": field, "error": answer.json()["errors"][0]["error"]}]
    }
    assert redis_client.dbsize() == 0


# ---------------------------------------------------------------- GET a job by id


def test_a_job_is_shown_as_the_job_command_shows_it(http, redis_url, tmp_path):
    """The same object as ``msgworker job ID --json`` (one view function), priority included."""
    job_id = http.post(
        "/v1/messages", json={"message": MESSAGE, "priority": "bulk"}, headers=AUTH
    ).json()["id"]
    answer = http.get(f"/v1/jobs/{job_id}", headers=AUTH)
    assert answer.status_code == 200
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGWORKER_")}
    env["MSGWORKER_BROKER_URL"] = redis_url
    done = subprocess.run(  # noqa: S603
        [str(BIN / "msgworker"), "job", job_id, "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=30,
        check=True,
    )
    assert answer.json() == json.loads(done.stdout)
    assert answer.json()["priority"] == "bulk"
    JobView.model_validate(answer.json())  # the documented shape is the real one


@pytest.mark.parametrize(
    "job_id",
    ["0123456789abcdef0123456789abcdef", "nope", "a:b", "%7B%7D", "x" * 300, "..", "%00", "é"],
)
def test_any_id_that_names_no_job_is_404(http, job_id):
    answer = http.get(f"/v1/jobs/{job_id}", headers=AUTH)
    assert answer.status_code == 404
    assert "error" in answer.json()


# ---------------------------------------------------------------- OpenAPI


def test_openapi_documents_every_path_field_and_error(http):
    """Generated from the producer's models: every message type and envelope field, and each
    error answer of each ingest path."""
    doc = http.get("/openapi.json").json()
    paths = doc["paths"]
    assert set(paths) >= {
        "/v1/messages",
        "/v1/messages/batch",
        "/v1/jobs/{job_id}",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    assert set(paths["/v1/messages"]["post"]["responses"]) == {
        "200",
        "202",
        "400",
        "401",
        "403",
        "413",
        "422",
        "503",
    }
    assert set(paths["/v1/messages/batch"]["post"]["responses"]) == {
        "200",
        "202",
        "400",
        "401",
        "403",
        "413",
        "422",
        "503",
    }
    for path in ("/v1/messages", "/v1/messages/batch"):
        (header,) = paths[path]["post"]["parameters"]
        assert (header["name"], header["in"]) == ("Idempotency-Key", "header")
    assert set(paths["/v1/jobs/{job_id}"]["get"]["responses"]) >= {"200", "401", "404", "503"}
    schemas = doc["components"]["schemas"]
    for name in (
        "TextMessage",
        "TemplateMessage",
        "ImageMessage",
        "DocumentMessage",
        "AudioMessage",
        "InteractiveMessage",
    ):
        assert name in schemas, name
    envelope = schemas["MessageEnvelope"]["properties"]
    assert set(envelope) == {
        "message",
        "idempotency_key",
        "send_at",
        "expires_at",
        "ttl_s",
        "account",
        "priority",
    }
    assert paths["/v1/messages"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ] == {"$ref": "#/components/schemas/SingleRequest"}
    assert "SingleRequest" in schemas
    assert "BatchRequest" in schemas

    def refs(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in set(refs(doc)):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
