"""The sandbox plays Meta's verdicts on accepted messages: pair pacing (131056), paused and
disabled templates (132015/132016), per-recipient errors, and template reviews posted as
webhooks. Real HTTP to a running sandbox; the webhooks reach a real HTTP receiver."""

from __future__ import annotations

import httpx
import pytest

from tests.sandbox.test_sandbox import KEY, MESSAGE, configure, messages, send
from tests.support.processes import wait_for
from tests.support.receiver import Receiver
from worker.sandbox.meta import Meta
from worker.sandbox.meta_errors import PAIR_RATE_LIMIT
from worker.sandbox.server import RunningSandbox, SandboxConfig

TEMPLATE = {
    "messaging_product": "whatsapp",
    "recipient_type": "individual",
    "to": "+905321110000",
    "type": "template",
    "template": {"name": "spring_sale", "language": {"code": "en_US"}},
}


def to(number: str, body: dict = MESSAGE) -> dict:
    return {**body, "to": number}


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def sandbox(receiver):
    """A sandbox posting webhooks to ``receiver`` at once, and a client for it."""
    running = RunningSandbox(
        SandboxConfig(
            webhook_url=f"{receiver.url}/webhooks/gateway",
            webhook_secret="whsec_meta_test",  # noqa: S106 - a test secret
            webhook_delivered_s=0.0,
            webhook_read_s=0.0,
        )
    )
    running.start()
    with httpx.Client(base_url=running.url, timeout=5.0) as client:
        yield client
    running.stop()


def meta_errors(client) -> dict[str, int | None]:
    """Each accepted message's wamid and the Meta error the sandbox gave it."""
    return {m["wamid"]: m["meta_error"] for m in messages(client)}


def failures(receiver) -> dict[str, int]:
    """wamid -> the error code of each ``failed`` status webhook received."""
    found = {}
    for body in receiver.bodies:
        for entry in body["entry"]:
            for change in entry["changes"]:
                for status in change["value"].get("statuses", []):
                    if status["status"] == "failed":
                        found[status["id"]] = status["errors"][0]["code"]
    return found


def test_a_pair_sent_faster_than_its_interval_fails_131056(sandbox, receiver):
    """With a 2 s pair interval, a second message to one number within it is accepted by the
    Gateway and then failed 131056 in its webhook; other numbers are not slowed, and the
    failed message does not count against the pair."""
    configure(sandbox, pair_interval_s=2.0, pair_burst=1)
    first = send(sandbox, body=to("905550000001")).json()["data"]["messages"][0]["id"]
    second = send(sandbox, body=to("905550000001")).json()["data"]["messages"][0]["id"]
    other = send(sandbox, body=to("905550000002")).json()["data"]["messages"][0]["id"]
    assert meta_errors(sandbox) == {first: None, second: 131056, other: None}
    wait_for(lambda: second in failures(receiver), timeout_s=5, what="the 131056 webhook")
    assert failures(receiver) == {second: 131056}
    assert "pair rate limit" in str(receiver.bodies).lower()


def test_a_burst_allows_that_many_in_the_interval(sandbox):
    configure(sandbox, pair_interval_s=60.0, pair_burst=3)
    for _ in range(4):
        send(sandbox, body=to("905550000003"))
    assert [m["meta_error"] for m in messages(sandbox)] == [None, None, None, 131056]


def test_pacing_off_by_default(sandbox):
    for _ in range(5):
        send(sandbox, body=to("905550000004"))
    assert [m["meta_error"] for m in messages(sandbox)] == [None] * 5


def test_paused_and_disabled_templates_fail_132015_and_132016(sandbox):
    """Only the configured template and language fail; free-form messages and other templates
    and languages are delivered."""
    configure(sandbox, paused_templates=["spring_sale:en_US"], disabled_templates=["old_offer:tr"])
    other_language = {**TEMPLATE, "template": {"name": "spring_sale", "language": {"code": "tr"}}}
    disabled = {**TEMPLATE, "template": {"name": "old_offer", "language": {"code": "tr"}}}
    for body in (TEMPLATE, other_language, disabled, MESSAGE):
        assert send(sandbox, body=body).status_code == 200
    assert [m["meta_error"] for m in messages(sandbox)] == [132015, None, 132016, None]


@pytest.mark.parametrize("code", [131047, 131049, 131050, 131048, 130429, 131026])
def test_a_recipient_error_fails_that_recipient_only(sandbox, receiver, code):
    configure(sandbox, recipient_errors={"+905550000009": code})
    failing = send(sandbox, body=to("905550000009")).json()["data"]["messages"][0]["id"]
    send(sandbox, body=to("905550000010"))
    wait_for(lambda: failing in failures(receiver), timeout_s=5, what=f"the {code} webhook")
    assert failures(receiver) == {failing: code}
    assert statuses_with_errors(receiver, failing) == ["failed"]


def statuses_with_errors(receiver, wamid: str) -> list[str]:
    """The statuses of ``wamid`` that carried errors[] (Meta's ``sent`` carries none)."""
    return [
        status["status"]
        for body in receiver.bodies
        for entry in body["entry"]
        for change in entry["changes"]
        for status in change["value"].get("statuses", [])
        if status["id"] == wamid and "errors" in status
    ]


@pytest.mark.parametrize(
    ("knobs", "field"),
    [
        ({"recipient_errors": {"905550000009": 999}}, "recipient_errors"),
        ({"recipient_errors": {"not-a-number": 131050}}, "recipient_errors"),
        ({"recipient_errors": ["905550000009"]}, "recipient_errors"),
        ({"paused_templates": ["no_language"]}, "paused_templates"),
        ({"paused_templates": "spring_sale:en_US"}, "paused_templates"),
        ({"pair_interval_s": -1}, "pair_interval_s"),
        ({"pair_burst": 0}, "pair_burst"),
    ],
)
def test_bad_meta_knobs_name_the_field_and_change_nothing(sandbox, knobs, field):
    before = sandbox.get("/sandbox/stats").json()["config"]
    response = sandbox.post("/sandbox/config", json=knobs)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert sandbox.get("/sandbox/stats").json()["config"] == before


def test_template_events_pause_and_reinstate_and_reach_the_webhook(sandbox, receiver):
    """PAUSED makes the template's messages fail 132015; REINSTATED lets them through; each
    event is posted as Meta's message_template_status_update webhook with the Bearer secret."""
    event = {"event": "PAUSED", "name": "spring_sale", "language": "en_US", "waba_id": "1029"}
    assert sandbox.post("/sandbox/template_event", json=event).status_code == 200
    send(sandbox, body=TEMPLATE)
    reinstated = {**event, "event": "REINSTATED"}
    assert sandbox.post("/sandbox/template_event", json=reinstated).status_code == 200
    send(sandbox, body=TEMPLATE)
    assert [m["meta_error"] for m in messages(sandbox)] == [132015, None]

    def template_events():
        return [
            (entry["id"], change["value"])
            for body in receiver.bodies
            for entry in body["entry"]
            for change in entry["changes"]
            if change["field"] == "message_template_status_update"
        ]

    wait_for(lambda: len(template_events()) == 2, timeout_s=5, what="both template webhooks")
    (waba, paused), (_, back) = template_events()
    assert waba == "1029"
    assert (paused["event"], back["event"]) == ("PAUSED", "REINSTATED")
    assert paused["message_template_name"] == "spring_sale"
    assert paused["message_template_language"] == "en_US"
    assert paused["message_template_id"] == back["message_template_id"]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"event": "PAUSE", "name": "a", "language": "en"}, "event"),
        ({"event": "PAUSED", "language": "en"}, "name"),
        ({"event": "PAUSED", "name": "a", "language": ""}, "language"),
        ({"event": "PAUSED", "name": "a", "language": "en", "waba_id": 7}, "waba_id"),
        ({"event": "PAUSED", "name": "a", "language": "en", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_template_event_names_the_field(sandbox, event, field):
    response = sandbox.post("/sandbox/template_event", json=event)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert sandbox.get("/sandbox/stats").json()["config"]["paused_templates"] == []


def test_a_template_event_needs_a_webhook_url():
    running = RunningSandbox(SandboxConfig())
    running.start()
    try:
        with httpx.Client(base_url=running.url, timeout=5.0) as client:
            event = {"event": "PAUSED", "name": "a", "language": "en"}
            response = client.post("/sandbox/template_event", json=event)
            assert response.status_code == 400
            assert response.json()["field"] == "webhook_url"
            assert send(client, KEY, body=TEMPLATE).status_code == 200
    finally:
        running.stop()


def test_past_the_cap_of_pairs_only_idle_ones_are_forgotten(monkeypatch):
    """With room for 4 pairs, 10 numbers each sent to within the interval are all still paced
    (a second message to any fails 131056); once the interval has passed they are forgotten."""
    monkeypatch.setattr("worker.sandbox.meta.PAIRS_MAX", 4)
    meta, config = Meta(), SandboxConfig(pair_interval_s=6.0)
    numbers = [f"90555000{n:04d}" for n in range(10)]
    assert [meta.verdict(config, "key1", MESSAGE, n, 100.0) for n in numbers] == [None] * 10
    assert {meta.verdict(config, "key1", MESSAGE, n, 101.0) for n in numbers} == {PAIR_RATE_LIMIT}
    assert [meta.verdict(config, "key1", MESSAGE, n, 200.0) for n in numbers] == [None] * 10
