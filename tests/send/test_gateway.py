"""The Gateway client: one translation boundary from httpx to the error tree."""

import gzip
import json
import socket
import threading
import time
import tracemalloc
import zlib
from dataclasses import replace

import httpcore
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.hostile import HostileGateway, gzip_bomb, mock_gateway, success
from tests.support.hostile import error as error_answer
from tests.support.hostile import http as http_answer
from worker.errors import (
    GatewayAnswerLost,
    GatewayError,
    GatewayNotReached,
    GatewayRejected,
)
from worker.outcome import Sent
from worker.send.gateway import TRANSPORT_ERRORS, GatewayClient
from worker.send.transport import (
    HTTPCORE_ERRORS,
    DeadlineBackend,
    PooledHTTP,
    as_httpx_error,
    env_proxy_for,
)
from worker.service.runtime import LEASE_MARGIN_S, MAX_INLINE_WAIT_S, claim_lease_s

API_KEY = "sk_test_0123456789abcdef"
BODY = {
    "messaging_product": "whatsapp",
    "to": "905321234567",
    "type": "text",
    "text": {"body": "hi"},
}
SUCCESS = {"isSuccess": True, "data": {"messages": [{"id": "wamid.OK1"}]}}


def client_with(handler, *, sandbox=False):
    http = mock_gateway(handler)
    return GatewayClient(http, base_url="https://gw.example/", api_key=API_KEY, sandbox=sandbox)


def all_subclasses(klass):
    found = {klass}
    for sub in klass.__subclasses__():
        found |= all_subclasses(sub)
    return found


def test_every_httpx_transport_error_has_an_explicit_mapping():
    """A transport error class httpx adds must be classified here before it reaches a worker."""
    assert all_subclasses(httpx.TransportError) <= set(TRANSPORT_ERRORS)


def test_every_httpcore_error_becomes_the_httpx_error_of_its_name():
    """The pool's failures reach the Gateway client as httpx's, each as its own class."""
    raised = set().union(*(all_subclasses(root) for root in HTTPCORE_ERRORS))
    for klass in raised:
        mapped = as_httpx_error(klass("boom"))
        assert isinstance(mapped, httpx.TransportError)
        assert type(mapped).__name__ == klass.__name__


def test_the_pool_sends_the_same_request_httpx_would(hostile):
    """On the wire: the path, the query, the Bearer key, compact UTF-8 JSON and its length."""
    with PooledHTTP(timeout_s=2) as http:
        client = GatewayClient(http, base_url=hostile.url + "/", api_key=API_KEY, sandbox=True)
        client.send({**BODY, "text": {"body": "çay☕"}})
    request_line, *header_lines = hostile.heads[0].decode().split("\r\n")
    headers = {
        name.lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)
    }
    body = hostile.requests[0][1]
    assert request_line == "POST /v1/wa/message?is_fake=true HTTP/1.1"
    assert headers["host"] == hostile.url.removeprefix("http://")
    assert headers["authorization"] == f"Bearer {API_KEY}"
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {**BODY, "text": {"body": "çay☕"}}
    assert b" " not in body  # compact, as httpx encodes it
    assert int(headers["content-length"]) == len(body)


def test_an_ipv6_gateway_is_named_in_brackets_in_the_host_header():
    """A Gateway at [::1]:port gets ``Host: [::1]:port``, which it can parse."""
    server = HostileGateway(host="::1")
    try:
        with PooledHTTP(timeout_s=2) as http:
            assert GatewayClient(http, base_url=server.url, api_key=API_KEY).send(BODY).wamid
        assert f"\r\nHost: {server.url.removeprefix('http://')}\r\n".encode() in server.heads[0]
        assert server.url.startswith("http://[::1]:")
    finally:
        server.stop()


def test_a_request_written_whole_is_not_called_unsent_by_a_deadline_passing_after_it():
    """h11's closing empty write, after the deadline: no WriteTimeout (the request went out)."""
    listener = socket.create_server(("127.0.0.1", 0))
    backend = DeadlineBackend()
    stream = backend.connect_tcp("127.0.0.1", listener.getsockname()[1], timeout=2)
    try:
        backend.arm(-1.0)  # the deadline passed just after the body was written
        stream.write(b"")
        with pytest.raises(httpcore.WriteTimeout):
            stream.write(b"more")
    finally:
        stream.close()
        listener.close()


def test_request_carries_bearer_key_path_json_and_sandbox_flag():
    """The POST goes to /v1/wa/message with the Bearer key, the JSON body and is_fake=true."""
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json=SUCCESS)

    sent = client_with(handler, sandbox=True).send(BODY)
    assert sent.wamid == "wamid.OK1"
    request = seen[0]
    assert request.url.path == "/v1/wa/message"
    assert request.url.params["is_fake"] == "true"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert json.loads(request.content) == BODY


def test_production_requests_carry_no_fake_flag():
    """Without SANDBOX the is_fake flag is absent."""
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json=SUCCESS)

    client_with(handler).send(BODY)
    assert "is_fake" not in seen[0].url.params


def test_error_answer_raises_gateway_rejected_with_fields():
    """An error body raises GatewayRejected carrying code, group, status and retry_after_s."""
    body = {
        "isSuccess": False,
        "errors": {
            "code": "RATE_001",
            "group": "TOO_MANY_REQUESTS",
            "description": "Rate limit exceeded.",
            "params": {"limit_type": "sec", "retry_after": "1 seconds"},
        },
    }
    headers = {"X-RateLimit-sec-Limit": "80", "X-RateLimit-sec-Remaining": "0"}
    client = client_with(lambda _r: httpx.Response(429, json=body, headers=headers))
    with pytest.raises(GatewayRejected) as caught:
        client.send(BODY)
    error = caught.value
    assert (error.code, error.group, error.status, error.retry_after_s) == (
        "RATE_001",
        "TOO_MANY_REQUESTS",
        429,
        1.0,
    )
    assert error.rate_limit.sec_remaining == 0
    assert error.outcome.code == "RATE_001"


@pytest.mark.parametrize(
    ("raised", "expected_class", "code"),
    [
        (httpx.ConnectError("refused"), GatewayNotReached, "CONNECTION"),
        (httpx.ConnectTimeout("slow connect"), GatewayNotReached, "TIMEOUT"),
        (httpx.PoolTimeout("pool"), GatewayNotReached, "TIMEOUT"),
        (httpx.WriteError("broken pipe"), GatewayNotReached, "CONNECTION"),
        (httpx.ReadTimeout("read"), GatewayAnswerLost, "TIMEOUT"),
        (httpx.ReadError("reset"), GatewayAnswerLost, "CONNECTION"),
        (httpx.RemoteProtocolError("closed"), GatewayAnswerLost, "CONNECTION"),
    ],
)
def test_transport_failures_are_classified_by_ambiguity(raised, expected_class, code):
    """Connect failures are never ambiguous; a lost answer after the request was written is."""

    def handler(_request):
        raise raised

    with pytest.raises(expected_class) as caught:
        client_with(handler).send(BODY)
    error = caught.value
    assert error.code == code
    assert error.status is None
    assert error.ambiguous is (expected_class is GatewayAnswerLost)
    assert error.outcome.is_transport
    assert isinstance(error.__cause__, httpx.TransportError)


@settings(max_examples=60, deadline=None)
@given(
    status=st.integers(min_value=100, max_value=599),
    headers=st.dictionaries(
        st.sampled_from(["retry-after", "x-ratelimit-sec-remaining", "content-type"]),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
    ),
    body=st.binary(max_size=100),
)
def test_client_raises_only_gateway_errors(status, headers, body):
    """Whatever the wire brings, send() returns Sent or raises a GatewayError, nothing else."""
    client = client_with(lambda _r: httpx.Response(status, headers=headers, content=body))
    try:
        result = client.send(BODY)
    except GatewayError as error:
        result = error
    assert isinstance(result, Sent | GatewayError)
    assert result.status == status


def test_secret_is_not_in_any_error_text():
    """Neither the message nor the repr of a GatewayError carries the API key."""
    errors = []
    for handler in (
        lambda _r: httpx.Response(
            401, json={"errors": {"code": "AUTH_001", "group": "UNAUTHORIZED"}}
        ),
        lambda _r: (_ for _ in ()).throw(httpx.ConnectError(f"failed with {API_KEY}")),
    ):
        with pytest.raises(GatewayError) as caught:
            client_with(handler).send(BODY)
        errors.append(caught.value)
    for error in errors:
        assert API_KEY not in str(error)
        assert API_KEY not in repr(error)
        assert API_KEY not in repr(vars(error))


@pytest.fixture
def silent_server():
    """A TCP server that accepts, reads the request, then either hangs or closes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    mode = {"close": False}
    connections = []
    stop = threading.Event()

    def serve():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            connections.append(conn)
            if mode["close"]:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", mode
    stop.set()
    thread.join()
    for conn in connections:
        conn.close()
    listener.close()


def test_read_timeout_on_a_real_socket_is_ambiguous(silent_server):
    """A server that takes the request and never answers gives an ambiguous TIMEOUT."""
    url, _mode = silent_server
    with PooledHTTP(timeout_s=0.3) as http:
        client = GatewayClient(http, base_url=url, api_key=API_KEY)
        with pytest.raises(GatewayAnswerLost) as caught:
            client.send(BODY)
    assert caught.value.code == "TIMEOUT"


def test_connection_closed_after_the_request_is_ambiguous(silent_server):
    """A server that reads the request and hangs up gives an ambiguous CONNECTION."""
    url, mode = silent_server
    mode["close"] = True
    with PooledHTTP(timeout_s=2) as http:
        client = GatewayClient(http, base_url=url, api_key=API_KEY)
        with pytest.raises(GatewayAnswerLost) as caught:
            client.send(BODY)
    assert caught.value.code == "CONNECTION"


def test_connection_refused_on_a_real_socket_is_not_ambiguous():
    """Nothing listening: CONNECTION, not ambiguous, the message was never sent."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with PooledHTTP(timeout_s=2) as http:
        client = GatewayClient(http, base_url=f"http://127.0.0.1:{port}", api_key=API_KEY)
        with pytest.raises(GatewayNotReached) as caught:
            client.send(BODY)
    assert (caught.value.code, caught.value.ambiguous) == ("CONNECTION", False)


@pytest.fixture
def hostile():
    server = HostileGateway()
    yield server
    server.stop()


def test_an_answer_dripped_a_byte_at_a_time_ends_at_the_total_deadline(hostile):
    """Each byte well within the read timeout, the whole past the deadline: TIMEOUT, on time."""
    hostile.play(replace(success("wamid.SLOW"), drip_s=0.1, chunk=1))
    with PooledHTTP(timeout_s=0.5, deadline_s=1.0) as http:
        client = GatewayClient(http, base_url=hostile.url, api_key=API_KEY)
        started = time.monotonic()
        with pytest.raises(GatewayAnswerLost) as caught:
            client.send(BODY)
    assert caught.value.code == "TIMEOUT"
    assert 0.9 <= time.monotonic() - started < 1.5


def test_the_deadline_is_per_call_on_a_reused_connection(hostile):
    """Sequential calls on one client each get the whole deadline."""
    hostile.default = http_answer(200, SUCCESS, silent_s=0.3)
    with PooledHTTP(timeout_s=1.0, deadline_s=0.5) as http:
        client = GatewayClient(http, base_url=hostile.url, api_key=API_KEY)
        assert [client.send(BODY).wamid for _ in range(3)] == ["wamid.OK1"] * 3


def test_a_huge_body_is_read_no_further_than_the_cap(hostile):
    """A 50 MB answer: at most BODY_MAX bytes read; a 200 without a readable id is rejected."""
    hostile.play(http_answer(200, b"{" + b" " * 50_000_000 + b"}"))
    with PooledHTTP(timeout_s=5) as http:
        client = GatewayClient(http, base_url=hostile.url, api_key=API_KEY)
        with pytest.raises(GatewayRejected) as caught:
            client.send(BODY)
    assert caught.value.code == "HTTP_200"
    assert caught.value.status == 200


def test_the_client_asks_for_an_uncompressed_answer(hostile):
    """Every call says ``Accept-Encoding: identity``."""
    with PooledHTTP(timeout_s=2) as http:
        GatewayClient(http, base_url=hostile.url, api_key=API_KEY).send(BODY)
    assert b"\r\naccept-encoding: identity" in hostile.heads[0].lower()


def test_a_gzip_bomb_is_decoded_no_further_than_the_cap(hostile):
    """A 256 KB gzip answer of 256 MB: the call holds at most a few MB while reading it, and a
    200 whose decoded start is no answer is rejected as HTTP_200 (parked ambiguous)."""
    hostile.play(http_answer(200, gzip_bomb(256), {"Content-Encoding": "gzip"}))
    with PooledHTTP(timeout_s=5) as http:
        client = GatewayClient(http, base_url=hostile.url, api_key=API_KEY)
        tracemalloc.start()
        try:
            with pytest.raises(GatewayRejected) as caught:
                client.send(BODY)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 4_000_000
    assert caught.value.code == "HTTP_200"


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate"])
def test_a_compressed_answer_sent_anyway_is_read(hostile, encoding):
    """A proxy that compresses regardless: a gzip or deflate success is still a success."""
    raw = json.dumps(SUCCESS).encode()
    packed = zlib.compress(raw) if encoding == "deflate" else gzip.compress(raw)
    hostile.play(http_answer(200, packed, {"Content-Encoding": encoding}))
    with PooledHTTP(timeout_s=2) as http:
        sent = GatewayClient(http, base_url=hostile.url, api_key=API_KEY).send(BODY)
    assert sent.wamid == "wamid.OK1"


@pytest.mark.parametrize(
    ("encoding", "body"), [("br", b"\x1b\x00"), ("gzip", b"not gzip"), ("gzip, gzip", b"")]
)
def test_an_answer_it_cannot_decode_is_an_answer_lost(hostile, encoding, body):
    """An encoding other than gzip or deflate, corrupt data or stacked encodings: the answer
    came but cannot be read, so the call is an answer lost (the routing table's ambiguous)."""
    hostile.play(http_answer(200, body, {"Content-Encoding": encoding}))
    with PooledHTTP(timeout_s=2) as http:
        client = GatewayClient(http, base_url=hostile.url, api_key=API_KEY)
        with pytest.raises(GatewayAnswerLost):
            client.send(BODY)


@pytest.mark.parametrize("deadline_s", [0.1, 2.0, 10.0, 120.0])
def test_the_claim_lease_outlasts_the_longest_call(deadline_s):
    """The lease covers the total deadline, the longest in-worker wait and a margin."""
    assert claim_lease_s(deadline_s) > deadline_s + MAX_INLINE_WAIT_S + LEASE_MARGIN_S


def test_a_key_at_the_end_of_a_long_description_and_a_bearer_prefix_are_redacted(hostile):
    """290 x's + the key, params {"k": "Bearer <first 20 chars>"}: no fragment survives."""
    errors = {
        "code": "VAL_1",
        "description": "x" * 290 + API_KEY,
        "params": {"k": f"Bearer {API_KEY[:20]}", "p": API_KEY[:9]},
    }
    hostile.play(error_answer(400, errors))
    with PooledHTTP(timeout_s=2) as http:
        client = GatewayClient(http, base_url=hostile.url, api_key=API_KEY)
        with pytest.raises(GatewayRejected) as caught:
            client.send(BODY)
    stored = caught.value.description + json.dumps(caught.value.params)
    assert not any(API_KEY[i : i + 8] in stored for i in range(len(API_KEY) - 7))
    assert caught.value.params["k"] == "Bearer ***"


@pytest.mark.parametrize("wamid", ["w" * 5_000_000, "wamid.<script>", "wamid\nx", ""])
def test_a_success_with_an_id_too_long_or_odd_is_not_a_success(hostile, wamid):
    """A 5 MB wamid or one with odd characters is no id: rejected (a 2xx without an id)."""
    hostile.play(success(wamid))
    with PooledHTTP(timeout_s=5) as http:
        client = GatewayClient(http, base_url=hostile.url, api_key=API_KEY)
        with pytest.raises(GatewayRejected) as caught:
            client.send(BODY)
    assert caught.value.code == "HTTP_200"
    assert len(json.dumps(caught.value.params)) <= 1100


def test_calls_go_through_the_proxy_the_environment_names(hostile, monkeypatch):
    """HTTP_PROXY set: the call reaches the Gateway through it, with the deadline still on."""
    monkeypatch.setenv("HTTP_PROXY", hostile.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    base_url = "http://gateway.invalid"
    proxy_url = env_proxy_for(base_url)
    assert proxy_url == hostile.url
    with PooledHTTP(timeout_s=2, proxy_url=proxy_url) as http:
        client = GatewayClient(http, base_url=base_url, api_key=API_KEY)
        sent = client.send({"to": "905321234567", "type": "text", "text": {"body": "hi"}})
    assert sent.wamid.startswith("wamid.")
    assert len(hostile.requests) == 1


def test_no_proxy_exempts_the_gateway_host(monkeypatch):
    """NO_PROXY naming the Gateway's host: no proxy for it, as httpx would decide."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "gw.example")
    assert env_proxy_for("https://gw.example/") is None
    assert env_proxy_for("https://other.example/") == "http://proxy.invalid:3128"
