"""Logging: JSON events; the API key never appears; phone numbers are masked."""

import json
import logging

import httpx
import pytest
import structlog

from tests.support.hostile import mock_gateway
from worker.errors import GatewayError
from worker.logs import configure_logging, get_logger, mask_phone
from worker.send.gateway import GatewayClient

API_KEY = "sk_live_9f8e7d6c5b4a"


@pytest.fixture(autouse=True)
def reset_logging():
    """Each test configures logging afresh; leave no handler behind."""
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("905321234567", "90532*****67"),
        ("+905321234567", "90532*****67"),
        ("4915112345678", "49151******78"),
        ("1234567", "12***67"),
    ],
)
def test_phone_numbers_are_masked(number, masked):
    """Enough digits to tell numbers apart, not to dial them."""
    assert mask_phone(number) == masked


def test_failing_authentication_never_logs_the_key(capsys):
    """The logs of an AUTH_001 (event, error, request headers, traceback) do not contain the key."""
    configure_logging(level="INFO", json=True, secrets=[API_KEY])
    log = get_logger("test")

    def handler(request):
        # A careless upstream echoing the header back must not leak it either.
        return httpx.Response(
            401,
            json={
                "isSuccess": False,
                "errors": {
                    "code": "AUTH_001",
                    "group": "UNAUTHORIZED",
                    "description": f"key {request.headers['Authorization']} not found",
                },
            },
        )

    client = GatewayClient(mock_gateway(handler), base_url="https://gw", api_key=API_KEY)
    with pytest.raises(GatewayError) as caught:
        client.send({"to": "905321234567"})
    error = caught.value
    log.error(
        "message.halted",
        code=error.code,
        error=error,
        description=error.description,
        headers={"Authorization": f"Bearer {API_KEY}"},
        message={"to": "905321234567"},
    )
    try:
        {}[API_KEY]  # a real traceback whose last line names the key
    except KeyError:
        log.exception("worker.crashed")
    logging.getLogger("celery").warning("stdlib line with %s", API_KEY)

    output = capsys.readouterr().err
    events = lines(output)
    assert [e["event"] for e in events] == [
        "message.halted",
        "worker.crashed",
        "stdlib line with ***",
    ]
    assert API_KEY not in output
    assert events[0]["code"] == "AUTH_001"
    assert "***" in events[0]["description"]
    assert events[0]["message"]["to"] == "90532*****67"
    assert "905321234567" not in output
    assert "Traceback" in events[1]["exception"]


def test_json_events_carry_level_time_and_logger(capsys):
    """Each line is one JSON object with event, level, timestamp and logger name."""
    configure_logging(level="INFO", json=True)
    get_logger("worker.send.delivery").info("message.sent", job_id="j1", to="905321234567")
    get_logger("worker.send.delivery").debug("message.noise")
    (event,) = lines(capsys.readouterr().err)
    assert event["event"] == "message.sent"
    assert event["level"] == "info"
    assert event["logger"] == "worker.send.delivery"
    assert event["to"] == "90532*****67"
    assert event["timestamp"].endswith("Z")


def test_console_format_is_not_json(capsys):
    """The console renderer is for people: one readable line, not JSON."""
    configure_logging(level="INFO", json=False)
    get_logger("t").info("message.sent", job_id="j1")
    output = capsys.readouterr().err
    assert "message.sent" in output
    with pytest.raises(json.JSONDecodeError):
        json.loads(output)
