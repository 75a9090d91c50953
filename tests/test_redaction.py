"""The API key, or any 8-character piece of it in any case, never reaches a log line, an error
code, a group or a message id, however the Gateway dresses it up."""

from __future__ import annotations

import pytest

from tests.support.cluster import API_KEY
from tests.support.hostile import HostileGateway, http, success
from worker.errors import GatewayError
from worker.logs import REDACTED, Scrubber, Secrets
from worker.send.gateway import GatewayClient
from worker.send.transport import PooledHTTP


def escaped(text: str) -> str:
    """Every fourth character as a JSON \\u escape: no run of 8 is left in the raw bytes."""
    return "".join(f"\\u{ord(c):04x}" if i % 4 == 3 else c for i, c in enumerate(text))


@pytest.fixture
def gateway():
    server = HostileGateway()
    yield server
    server.stop()


@pytest.mark.parametrize(
    "value",
    [API_KEY, API_KEY[:12], API_KEY[5:15], f"Bearer {API_KEY[:10]}", API_KEY.upper()],
)
def test_the_log_scrubber_hides_the_key_its_fragments_and_bearer_tokens(value):
    """A log field holding the key, a piece of it, a Bearer prefix or the key upper-cased is
    logged with *** in its place, nested fields included."""
    scrub = Scrubber(Secrets([API_KEY]))
    event = scrub(None, "info", {"event": "x", "detail": f"said {value}!", "nested": {"k": value}})
    for text in (event["detail"], event["nested"]["k"]):
        assert REDACTED in text
        assert API_KEY[:8] not in text.lower()
        assert not any(API_KEY[i : i + 8] in text.lower() for i in range(len(API_KEY) - 7))


def test_a_code_or_group_made_of_the_key_is_replaced_by_the_status(gateway):
    """A code or group that decodes (JSON escapes) to the key is not kept: the code is the HTTP
    status's, the group none."""
    body = '{"errors": {"code": "' + escaped(API_KEY) + '", "group": "' + escaped(API_KEY) + '"}}'
    gateway.play(http(400, body))
    with PooledHTTP(timeout_s=2) as client_http:
        client = GatewayClient(client_http, base_url=gateway.url, api_key=API_KEY)
        with pytest.raises(GatewayError) as raised:
            client.send({"to": "905321234567"})
    assert raised.value.code == "HTTP_400"
    assert raised.value.group is None


def test_a_message_id_made_of_the_key_is_stored_redacted(gateway):
    """A success whose id decodes to the key is a success (it was sent) with the id hidden."""
    gateway.play(http(200, '{"data": {"messages": [{"id": "' + escaped(API_KEY) + '"}]}}'))
    with PooledHTTP(timeout_s=2) as client_http:
        sent = GatewayClient(client_http, base_url=gateway.url, api_key=API_KEY).send({})
    assert sent.wamid == REDACTED


def test_an_answer_quoting_a_key_rotated_out_is_redacted(gateway):
    """The key read afresh changes (a rotation); a later answer quoting the old key, the new
    one and a piece of each keeps none of them, and neither does a log line."""
    old, new = "sk_first_Qw7e9r1t3y5u", "sk_second_Zx2c4v6b8n0m"
    key = [old]
    secrets = Secrets()
    scrub = Scrubber(secrets)
    description = f"revoked {old}, now {new}; was {old[3:14]}"
    gateway.play(success("wamid.1"), http(400, {"errors": {"description": description}}))
    with PooledHTTP(timeout_s=2) as client_http:
        client = GatewayClient(
            client_http, base_url=gateway.url, api_key=lambda: key[0], secrets=secrets
        )
        client.send({})
        key[0] = new
        with pytest.raises(GatewayError) as raised:
            client.send({})
    logged = scrub(None, "error", {"event": "x", "reason": description})["reason"]
    for text in (raised.value.description, logged):
        for secret in (old, new):
            assert not any(
                secret[i : i + 8].lower() in text.lower() for i in range(len(secret) - 7)
            )


def test_secrets_only_grow_and_ignore_short_values():
    """A secret once added stays hidden; one too short to tell from text is not searched for."""
    secrets = Secrets(["sk_one_0123456789"])
    secrets.add("short")
    secrets.add("sk_two_abcdefghij")
    assert secrets.hide("sk_one_0123456789 sk_two_abcdefghij short") == "*** *** short"
