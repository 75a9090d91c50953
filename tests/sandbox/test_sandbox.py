"""The sandbox gateway, exercised over real HTTP the way the worker and the demo use it."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from worker.sandbox.server import RunningSandbox, SandboxConfig

KEY = "sk_sandbox"
MESSAGE = {
    "messaging_product": "whatsapp",
    "recipient_type": "individual",
    "to": "+905321234567",
    "type": "text",
    "text": {"body": "Your code is 123456"},
}
SEND = "/v1/wa/message"
RATE_HEADERS = (
    "X-RateLimit-sec-Limit",
    "X-RateLimit-sec-Remaining",
    "X-RateLimit-min-Limit",
    "X-RateLimit-min-Remaining",
)


@pytest.fixture
def connect():
    """Start a sandbox with the given knobs and return an HTTP client bound to it."""
    opened = []

    def make(**knobs):
        sandbox = RunningSandbox(SandboxConfig(**knobs))
        sandbox.start()
        client = httpx.Client(base_url=sandbox.url, timeout=5.0)
        opened.append((sandbox, client))
        return client

    yield make
    for sandbox, client in opened:
        client.close()
        sandbox.stop()


@pytest.fixture
def client(connect):
    return connect()


def send(client, key=KEY, body=MESSAGE, **kwargs):
    headers = kwargs.pop("headers", {"Authorization": f"Bearer {key}"})
    return client.post(SEND, json=body, headers=headers, **kwargs)


def error(response):
    return response.json()["errors"]


def messages(client, **query):
    return client.get("/sandbox/messages", params=query).json()["messages"]


def stats(client):
    return client.get("/sandbox/stats").json()


def configure(client, **knobs):
    response = client.post("/sandbox/config", json=knobs)
    assert response.status_code == 200, response.text
    return response.json()["config"]


def test_success_has_the_gateway_shape(client):
    """A valid message gets 200 with contacts, a wamid and the four rate-limit headers."""
    response = send(client)
    assert response.status_code == 200
    data = response.json()
    assert data["isSuccess"] is True
    assert data["data"]["contacts"] == [{"input": "+905321234567", "wa_id": "905321234567"}]
    assert data["data"]["messages"][0]["id"].startswith("wamid.")
    assert all(name in response.headers for name in RATE_HEADERS)


def test_query_flags_are_accepted(client):
    """``is_fake=true`` and ``mmlite=true`` change nothing: the message is accepted."""
    response = send(client, params={"is_fake": "true", "mmlite": "true"})
    assert response.status_code == 200
    assert len(messages(client)) == 1


def test_wamids_are_unique(client):
    """Every accepted message gets its own wamid."""
    ids = {send(client).json()["data"]["messages"][0]["id"] for _ in range(20)}
    assert len(ids) == 20


def test_missing_authorization_is_auth_002(client):
    """No Authorization header is 401 AUTH_002."""
    response = send(client, headers={})
    assert response.status_code == 401
    assert error(response)["code"] == "AUTH_002"
    assert error(response)["group"] == "UNAUTHORIZED"


def test_non_bearer_authorization_is_auth_003(client):
    """An Authorization header not of the form ``Bearer <token>`` is 401 AUTH_003."""
    for value in (f"Basic {KEY}", "Bearer", f"Bearer {KEY} extra", KEY):
        response = send(client, headers={"Authorization": value})
        assert response.status_code == 401
        assert error(response)["code"] == "AUTH_003", value


def test_unknown_key_is_auth_001(client):
    """A well-formed but unknown key is 401 AUTH_001."""
    response = send(client, key="sk_nobody")
    assert response.status_code == 401
    assert error(response)["code"] == "AUTH_001"


def test_broken_waba_is_waba_001(client):
    """A key flagged ``waba_broken`` is 401 WABA_001 and nothing is recorded."""
    label = client.post("/sandbox/keys", json={"api_key": "sk_waba", "waba_broken": True})
    assert label.json() == {"key_label": "key2"}
    response = send(client, key="sk_waba")
    assert response.status_code == 401
    assert error(response)["code"] == "WABA_001"
    assert messages(client) == []


def test_key_without_billing_is_bill_002(client):
    """A key flagged ``no_billing`` is 400 BILL_002 with group BAD_REQUEST."""
    client.post("/sandbox/keys", json={"api_key": "sk_free", "no_billing": True})
    response = send(client, key="sk_free")
    assert response.status_code == 400
    assert (error(response)["code"], error(response)["group"]) == ("BILL_002", "BAD_REQUEST")


def test_balance_runs_out_then_topup_restores(connect):
    """The message that reaches 0 is accepted, the next is 402 BILL_001, a top-up cures it."""
    client = connect(balance=0.002)
    assert [send(client).status_code for _ in range(2)] == [200, 200]
    refused = send(client)
    assert refused.status_code == 402
    assert (error(refused)["code"], error(refused)["group"]) == ("BILL_001", "PAYMENT_REQUIRED")
    topped = client.post("/sandbox/topup", json={"amount": 0.001, "key_label": "key1"})
    assert topped.json() == {"balances": {"key1": 0.001}}
    assert send(client).status_code == 200
    assert send(client).status_code == 402
    assert stats(client)["balances"] == {"key1": 0.0}


def test_sec_window_exceeded_is_rate_001(connect):
    """Past rate_per_sec, a 429 RATE_001 names the sec window with Retry-After and headers."""
    client = connect(rate_per_sec=5)
    assert [send(client).status_code for _ in range(5)] == [200] * 5
    response = send(client)
    assert response.status_code == 429
    assert error(response) == {
        "code": "RATE_001",
        "group": "TOO_MANY_REQUESTS",
        "description": "Rate limit exceeded. Please try again later.",
        "params": {"limit_type": "sec", "retry_after": "1 seconds"},
    }
    assert response.headers["Retry-After"] == "1"
    assert response.headers["X-RateLimit-sec-Limit"] == "5"
    assert response.headers["X-RateLimit-sec-Remaining"] == "0"
    assert response.headers["X-RateLimit-min-Remaining"] == str(4800 - 5)


def test_each_key_has_its_own_limits_balance_and_counts(connect):
    """Two keys: one at 3/s of its own with 0.003 left, one at the sandbox's 5/s with plenty.
    Each is limited and billed on its own; stats count each key's answers by its label."""
    client = connect(api_keys=(KEY,), rate_per_sec=5)
    added = client.post(
        "/sandbox/keys", json={"api_key": "sk_small", "rate_per_sec": 3, "balance": 0.003}
    )
    assert added.json() == {"key_label": "key2"}
    small = [send(client, key="sk_small") for _ in range(4)]
    assert [r.status_code for r in small] == [200, 200, 200, 429]
    assert small[0].headers["X-RateLimit-sec-Limit"] == "3"
    big = [send(client) for _ in range(5)]
    assert [r.status_code for r in big] == [200] * 5
    assert big[0].headers["X-RateLimit-sec-Limit"] == "5"
    time.sleep(1.05)  # the small key's second window: its balance, not its limit, stops it
    assert error(send(client, key="sk_small"))["code"] == "BILL_001"
    view = stats(client)
    assert view["balances"] == {"key1": pytest.approx(999.995), "key2": 0.0}
    assert view["by_key"] == {
        "key1": {"OK": 5},
        "key2": {"OK": 3, "RATE_001": 1, "BILL_001": 1},
    }
    assert view["config"]["keys"]["key2"]["rate_per_sec"] == 3
    client.post("/sandbox/keys", json={"api_key": "sk_small", "rate_per_sec": None})
    assert stats(client)["config"]["keys"]["key2"]["rate_per_sec"] is None


def test_min_window_exceeded_is_rate_001(connect):
    """Past rate_per_min, RATE_001 names the min window and asks to wait up to a minute."""
    client = connect(rate_per_min=3)
    assert [send(client).status_code for _ in range(3)] == [200] * 3
    response = send(client)
    assert response.status_code == 429
    params = error(response)["params"]
    assert params["limit_type"] == "min"
    wait_s = int(response.headers["Retry-After"])
    assert 1 <= wait_s <= 60
    assert params["retry_after"] == f"{wait_s} seconds"
    assert response.headers["X-RateLimit-min-Remaining"] == "0"


def test_rejected_requests_do_not_count(connect):
    """Requests refused with RATE_001 use no slot: raising the limit by one lets one through."""
    client = connect(rate_per_min=2)
    assert [send(client).status_code for _ in range(5)] == [200, 200, 429, 429, 429]
    configure(client, rate_per_min=3)
    assert send(client).status_code == 200
    assert send(client).status_code == 429


def test_remaining_headers_decrease(connect):
    """Each accepted request lowers both Remaining headers by one."""
    client = connect(rate_per_sec=10, rate_per_min=100)
    responses = [send(client) for _ in range(3)]
    assert [r.headers["X-RateLimit-sec-Remaining"] for r in responses] == ["9", "8", "7"]
    assert [r.headers["X-RateLimit-min-Remaining"] for r in responses] == ["99", "98", "97"]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("seconds", "1 seconds"), ("s", "1s"), ("number", 1), ("ms", "1000ms")],
)
def test_retry_after_format_is_configurable(connect, fmt, expected):
    """``retry_after_format`` switches params.retry_after between the forms seen in the wild."""
    client = connect(rate_per_sec=1)
    configure(client, retry_after_format=fmt)
    send(client)
    assert error(send(client))["params"]["retry_after"] == expected


def test_invalid_payload_names_the_field(client):
    """A payload refused by the message models is 400 VALIDATION listing the bad field."""
    response = send(client, body={**MESSAGE, "text": {}})
    assert response.status_code == 400
    errors = error(response)
    assert (errors["code"], errors["group"]) == ("VAL_001", "VALIDATION")
    assert errors["params"] == {"fields": ["text.body"]}
    assert "text.body" in errors["description"]
    assert all(name in response.headers for name in RATE_HEADERS)


def test_body_that_is_not_json_is_refused(client):
    """A body that is not JSON is 400 VALIDATION naming ``body``."""
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    response = client.post(SEND, content=b"{not json", headers=headers)
    assert response.status_code == 400
    assert error(response)["params"] == {"fields": ["body"]}


def test_fault_auth_004(connect):
    """An auth_004 fault is 500 AUTH_004 INTERNAL_ERROR, neither charged nor recorded."""
    client = connect(fault_rate=1.0, fault_kinds=("auth_004",))
    response = send(client)
    assert response.status_code == 500
    assert (error(response)["code"], error(response)["group"]) == ("AUTH_004", "INTERNAL_ERROR")
    assert messages(client) == []
    assert stats(client)["balances"] == {"key1": 1000.0}


def test_fault_html_502(connect):
    """An html_502 fault is a 502 with a proxy's HTML page."""
    client = connect(fault_rate=1.0, fault_kinds=("html_502",))
    response = send(client)
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text == "<html><body><h1>502 Bad Gateway</h1></body></html>"


def test_fault_empty_503(connect):
    """An empty_503 fault is a 503 with an empty body."""
    client = connect(fault_rate=1.0, fault_kinds=("empty_503",))
    response = send(client)
    assert response.status_code == 503
    assert response.content == b""


def test_fault_drop_is_a_transport_error(connect):
    """A drop fault closes the connection with no answer; nothing is recorded."""
    client = connect(fault_rate=1.0, fault_kinds=("drop",))
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        send(client)
    assert messages(client) == []
    assert stats(client)["by_code"] == {"DROPPED": 1}


def test_fault_slow_times_out_but_is_recorded(connect):
    """A slow fault outlasts the client's timeout, yet the message was accepted."""
    client = connect(fault_rate=1.0, fault_kinds=("slow",), timeout_fault_s=1.0)
    with pytest.raises(httpx.ReadTimeout):
        send(client, timeout=0.2)
    assert [m["to"] for m in messages(client)] == ["+905321234567"]


def test_latency_delays_successes(connect):
    """``latency_ms`` delays the answer to an accepted message."""
    client = connect(latency_ms=200)
    started = time.monotonic()
    assert send(client).status_code == 200
    assert time.monotonic() - started >= 0.19


def test_seed_makes_faults_repeatable(connect):
    """Two sandboxes with the same seed inject faults on the same requests."""
    knobs = {"fault_rate": 0.5, "fault_kinds": ("auth_004",), "seed": 7}
    first, second = connect(**knobs), connect(**knobs)
    statuses = [[send(c).status_code for _ in range(20)] for c in (first, second)]
    assert statuses[0] == statuses[1]
    assert set(statuses[0]) == {200, 500}


def test_outage_drops_then_recovers(client):
    """During ``outage_s`` every send is dropped; afterwards service resumes by itself."""
    configure(client, outage_s=1.0)
    started = time.monotonic()
    with pytest.raises(httpx.TransportError):
        send(client)
    deadline = started + 5.0
    while time.monotonic() < deadline:
        try:
            response = send(client)
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        break
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.9


def test_scripted_answers_play_in_order(client):
    """Scripted answers replace the next sends one by one, then normal service returns."""
    script = [
        {"code": "GW_001", "status": 400, "description": "invalid recipient"},
        {"status": 502, "raw_body": "<html>bad gateway</html>", "headers": {"Retry-After": "2"}},
        {"drop": True},
        {"delay_s": 0.1, "ok": True},
        {"code": "RATE_001", "status": 429, "group": "TOO_MANY_REQUESTS", "params": {}},
    ]
    assert client.post("/sandbox/script", json={"answers": script}).json() == {"queued": 5}
    gw = send(client)
    assert gw.status_code == 400
    assert gw.json() == {
        "isSuccess": False,
        "errors": {"code": "GW_001", "description": "invalid recipient"},
    }
    raw = send(client)
    assert (raw.status_code, raw.text, raw.headers["Retry-After"]) == (
        502,
        "<html>bad gateway</html>",
        "2",
    )
    with pytest.raises(httpx.TransportError):
        send(client)
    assert send(client).json()["isSuccess"] is True
    assert error(send(client))["code"] == "RATE_001"
    assert send(client).status_code == 200
    assert len(messages(client)) == 2


def test_scripted_answers_follow_the_auth_check(client):
    """A request that fails authentication does not consume a scripted answer."""
    client.post("/sandbox/script", json={"answers": [{"code": "GW_001", "status": 400}]})
    assert error(send(client, key="sk_nobody"))["code"] == "AUTH_001"
    assert error(send(client))["code"] == "GW_001"


def test_bad_script_names_the_answer(client):
    """A malformed scripted answer is refused, naming where it is."""
    response = client.post("/sandbox/script", json={"answers": [{"ok": True}, {"code": "X"}]})
    assert response.status_code == 400
    assert response.json()["field"] == "answers[1].status"


def test_messages_paginate(client):
    """``since`` and ``limit`` walk the message log in order; ``next`` is the next ``since``."""
    for i in range(5):
        send(client, headers={"Authorization": f"Bearer {KEY}", "X-Idempotency-Key": f"k{i}"})
    seen, since = [], 0
    while True:
        page = client.get("/sandbox/messages", params={"since": since, "limit": 2}).json()
        if not page["messages"]:
            break
        assert len(page["messages"]) <= 2
        seen += page["messages"]
        since = page["next"]
    assert [m["seq"] for m in seen] == [1, 2, 3, 4, 5]
    assert [m["idempotency_key"] for m in seen] == ["k0", "k1", "k2", "k3", "k4"]
    assert seen[0]["key_label"] == "key1"
    assert seen[0]["type"] == "text"
    assert seen[0]["body"] == MESSAGE
    assert since == 5


def test_stats_count_every_request(connect):
    """Stats count requests by code and status, accepted messages and balances."""
    client = connect(rate_per_sec=2)
    send(client)
    send(client)
    send(client)
    send(client, key="sk_nobody")
    body = stats(client)
    assert (body["requests"], body["accepted"]) == (4, 2)
    assert body["by_code"] == {"OK": 2, "RATE_001": 1, "AUTH_001": 1}
    assert body["by_status"] == {"200": 2, "429": 1, "401": 1}
    assert body["balances"] == {"key1": 999.998}
    assert body["config"]["rate_per_sec"] == 2


def test_reset_forgets_everything(connect):
    """Reset clears messages, stats and scripts and restores the starting balance."""
    client = connect(balance=5.0)
    send(client)
    client.post("/sandbox/script", json={"answers": [{"drop": True}]})
    assert client.post("/sandbox/reset").json() == {"ok": True}
    assert messages(client) == []
    body = stats(client)
    assert (body["requests"], body["by_code"], body["balances"]) == (0, {}, {"key1": 5.0})
    assert send(client).status_code == 200


def test_config_rejects_unknown_field(client):
    """An unknown setting is a 400 naming it, and nothing changes."""
    response = client.post("/sandbox/config", json={"rate_per_sec": 3, "bogus": 1})
    assert response.status_code == 400
    assert response.json()["field"] == "bogus"
    assert "bogus" in response.json()["error"]
    assert stats(client)["config"]["rate_per_sec"] == 80


def test_config_rejects_bad_value(client):
    """An out-of-range value is a 400 naming its field."""
    response = client.post("/sandbox/config", json={"fault_rate": 2})
    assert response.status_code == 400
    assert response.json()["field"] == "fault_rate"


def test_config_changes_apply_at_runtime(client):
    """Settings posted to /sandbox/config take effect on the next request."""
    configure(client, fault_rate=1.0, fault_kinds=["empty_503"])
    assert send(client).status_code == 503
    configure(client, fault_rate=0.0, balance=0.0)
    assert send(client).status_code == 402


def test_raw_key_never_appears_in_admin_output(connect):
    """The API key is shown as its label only, in messages, stats and config."""
    raw_key = "sk_live_TOPSECRET_42"
    client = connect(api_keys=("sk_other", raw_key))
    client.post("/sandbox/keys", json={"api_key": raw_key, "balance": 3.0})
    send(client, key=raw_key)
    client.post("/sandbox/script", json={"answers": [{"ok": True}]})
    send(client, key=raw_key)
    labels = {m["key_label"] for m in messages(client)}
    assert labels == {"key2"}
    for path in ("/sandbox/messages", "/sandbox/stats"):
        assert raw_key not in client.get(path).text
    assert raw_key not in json.dumps(configure(client, latency_ms=0))
