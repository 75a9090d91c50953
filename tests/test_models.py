"""Message models: clear errors naming the field; `to` normalised to digits."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.messages import text
from worker.errors import InvalidMessage
from worker.models import TEXT_BODY_MAX, message_body, parse_message
from worker.producer import Request, build_job


@pytest.mark.parametrize(
    "raw",
    ["905321234567", "+905321234567", "+90 532 123 45 67", "90-532-123-4567", "(90) 532.123.45.67"],
)
def test_to_is_normalised_to_digits(raw):
    """A leading + and the spaces, dashes, dots and brackets people type are dropped."""
    assert parse_message(text(to=raw)).to == "905321234567"


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        (text(to="call me"), "to", "phone number"),
        (text(to="123"), "to", "7 to 15 digits"),
        (text(to="0532 123 45 67"), "to", "country code"),
        (text(to="١٢٣٤٥٦٧٨٩"), "to", "phone number"),
        ({"to": "905321234567", "type": "text"}, "text", "Field required"),
        ({"to": "905321234567", "type": "text", "text": {}}, "text.body", "Field required"),
        (text(body=""), "text.body", "blank"),
        (text(body="   "), "text.body", "blank"),
        (text(body="x" * (TEXT_BODY_MAX + 1)), "text.body", "at most 4096"),
        ({"to": "905321234567", "type": "fax"}, "type", "must be one of"),
        ({"to": "905321234567"}, "type", "is required"),
        ({"type": "text", "text": {"body": "hi"}}, "to", "Field required"),
        ({**text(), "colour": "red"}, "colour", "Extra inputs"),
        ({**text(), "messaging_product": "sms"}, "messaging_product", "whatsapp"),
        (
            {"to": "905321234567", "type": "image", "image": {}},
            "image",
            "exactly one of link or id",
        ),
        (
            {"to": "905321234567", "type": "image", "image": {"link": "ftp://x"}},
            "image.link",
            "pattern",
        ),
        (
            {"to": "905321234567", "type": "template", "template": {"name": "otp"}},
            "template.language",
            "required",
        ),
        (
            {"to": "905321234567", "type": "interactive", "interactive": {"type": "button"}},
            "interactive.action",
            "required",
        ),
        ("not an object", "message", "dictionary"),
    ],
)
def test_invalid_payload_names_the_field(payload, field, words):
    """Each refusal is an InvalidMessage whose problems name the bad field and say why."""
    with pytest.raises(InvalidMessage) as caught:
        parse_message(payload)
    problems = {p.field: p.message for p in caught.value.problems}
    assert field in problems, problems
    assert words in problems[field]
    assert f"{field}:" in str(caught.value)


def test_text_body_of_exactly_the_limit_is_accepted():
    """4096 characters is allowed; 4097 is not (tested above)."""
    assert len(parse_message(text(body="é" * TEXT_BODY_MAX)).text.body) == TEXT_BODY_MAX


@pytest.mark.parametrize(
    "payload",
    [
        {
            "to": "905321234567",
            "type": "image",
            "image": {"link": "https://x.example/a.png", "caption": "c"},
        },
        {"to": "905321234567", "type": "audio", "audio": {"id": "1234"}},
        {
            "to": "905321234567",
            "type": "document",
            "document": {"link": "https://x.example/a.pdf", "filename": "a.pdf"},
        },
        {
            "to": "905321234567",
            "type": "template",
            "template": {
                "name": "order_update",
                "language": {"code": "tr"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "42"}]}],
            },
        },
        {
            "to": "905321234567",
            "type": "interactive",
            "interactive": {"type": "button", "body": {"text": "ok?"}, "action": {"buttons": []}},
        },
    ],
)
def test_every_cloud_api_type_is_accepted(payload):
    """image, audio, document, template and interactive payloads validate and keep their object."""
    body = message_body(parse_message(payload))
    assert body["type"] == payload["type"]
    assert body[payload["type"]]
    assert body["messaging_product"] == "whatsapp"
    assert body["recipient_type"] == "individual"


def test_message_body_is_the_normalised_json_to_post():
    """The body to send has the digits-only number and no unset optional fields."""
    body = message_body(parse_message(text(to="+90 532 123 45 67", body="hello")))
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "905321234567",
        "type": "text",
        "text": {"body": "hello", "preview_url": False},
    }


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=30),
        lambda c: (
            st.lists(c, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    ["to", "type", "text", "body", "image", "link", "template", "name", "x"]
                ),
                c,
                max_size=4,
            )
        ),
        max_leaves=15,
    )
)
def test_any_input_is_accepted_or_refused_with_named_fields(payload):
    """Random input never raises anything but InvalidMessage, and every problem names a field."""
    problems = []
    try:
        parse_message(payload)
    except InvalidMessage as error:
        problems = error.problems or [None]
    assert all(p is not None and p.field and p.message for p in problems)


@given(
    depth=st.integers(min_value=0, max_value=3000),
    width=st.integers(min_value=0, max_value=300),
    leaf=st.none() | st.floats() | st.integers() | st.text(max_size=5),
)
def test_any_depth_or_width_is_refused_as_invalid_message_never_a_recursion_error(
    depth, width, leaf
):
    """However deep or wide the free-form parts, parse_message answers or raises InvalidMessage."""
    value: object = [leaf] * width
    for _ in range(depth):
        value = {"x": value}
    problems = []
    try:
        parse_message({**text(), "context": value})
    except InvalidMessage as error:
        problems = error.problems
    assert all(p.field.startswith(("context", "message")) for p in problems)


@pytest.mark.parametrize(
    ("options", "payload", "field"),
    [
        ({"ttl_s": True}, text(), "ttl_s"),
        ({"ttl_s": "60"}, text(), "ttl_s"),
        ({}, {**text(), "text": {"body": "hi", "preview_url": 1}}, "message.text.preview_url"),
        ({}, {**text(), "text": {"body": "hi", "preview_url": "yes"}}, "message.text.preview_url"),
    ],
)
def test_a_value_of_the_wrong_json_type_is_refused_naming_the_field(options, payload, field):
    """Strict types for the producer API: true is not a number, 1 or "yes" is not a flag."""
    with pytest.raises(InvalidMessage) as caught:
        build_job(Request(payload, options), now=0.0, accounts=frozenset({"default"}))
    assert [problem.field for problem in caught.value.problems] == [field]
    assert build_job(Request(text(), {"ttl_s": 60}), now=0.0, accounts=frozenset({"default"}))
