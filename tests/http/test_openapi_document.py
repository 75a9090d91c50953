"""The API's document for other languages (/openapi.json): every error answer in the service's
own shapes, the Bearer schemes and the Idempotency-Key declared where they apply, and examples
that are valid against their schemas and accepted by the service."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from tests.support.serve import TOKEN, Service
from worker.http.app import create_app
from worker.models import MESSAGE_TYPES, PHONE_PATTERN, normalise_phone, parse_message
from worker.producer import Request, build_job
from worker.settings import Settings
from worker.store.receipts import ReceiptStatus
from worker.store.states import JobState

WEBHOOK_SECRET = "whsec_document_0123456789abcdef"  # noqa: S105 - a test secret
# The service's own error shapes: one line, or the bad fields (of a batch: with their indexes).
PROBLEM_SCHEMAS = {f"#/components/schemas/{name}" for name in ("Problem", "Errors", "BatchErrors")}
SECURED = {
    ("post", "/v1/messages"): "ingestToken",
    ("post", "/v1/messages/batch"): "ingestToken",
    ("get", "/v1/jobs/{job_id}"): "ingestToken",
    ("post", "/webhooks/gateway"): "webhookSecret",
}


@pytest.fixture(scope="module")
def document():
    """The document with every part on (ingest, webhooks, the console), made as serve makes it;
    nothing connects to Redis to make it."""
    settings = Settings(
        broker_url="redis://127.0.0.1:1/0",
        ingest_tokens=TOKEN,
        webhook_secret=WEBHOOK_SECRET,
        console_password="a console password of some length",  # noqa: S106
        _env_file=None,
    )
    return create_app(settings).openapi()


def operations_by_route(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield (method, path), operation


def validator(document, ref: str) -> Draft202012Validator:
    """A validator for one schema of the document, its references resolved in the document."""
    return Draft202012Validator({"$ref": ref, "components": document["components"]})


def test_every_error_answer_is_one_of_the_services_own_shapes(document):
    """Each 4xx and 5xx an operation declares is Problem, Errors or BatchErrors; FastAPI's
    {"detail"} shape is nowhere (GET /v1/jobs/{id} declared it, and never sends it)."""
    errors = 0
    for route, operation in operations_by_route(document):
        for status, answer in operation["responses"].items():
            if int(status) < 400:
                continue
            errors += 1
            schema = answer["content"]["application/json"]["schema"]
            assert schema.get("$ref") in PROBLEM_SCHEMAS, (route, status, schema)
    assert errors >= 20  # every route's errors were looked at
    text = json.dumps(document)
    assert "HTTPValidationError" not in text
    assert '"detail"' not in text


def test_each_route_that_checks_a_secret_declares_its_bearer_scheme(document):
    """Ingest routes the ingest token, the webhook the webhook secret; health, readiness and
    metrics none; both schemes are HTTP Bearer."""
    for route, operation in operations_by_route(document):
        expected = [{SECURED[route]: []}] if route in SECURED else None
        assert operation.get("security") == expected, route
        if route in SECURED:
            assert "401" in operation["responses"], route
    schemes = document["components"]["securitySchemes"]
    assert set(schemes) == {"ingestToken", "webhookSecret"}
    for scheme in schemes.values():
        assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def test_the_idempotency_key_header_is_declared_where_it_is_honoured(document):
    """Both enqueue routes take Idempotency-Key (optional); no other operation declares it."""
    for route, operation in operations_by_route(document):
        headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
        honoured = route in {("post", "/v1/messages"), ("post", "/v1/messages/batch")}
        assert headers == (["Idempotency-Key"] if honoured else []), route


def test_each_message_type_has_an_example_valid_against_its_schema_and_the_producer(document):
    """Every message type's schema has an example; it matches the schema, and the producer's
    validation (the service's) accepts it; so do the envelope's and the batch's."""
    schemas = document["components"]["schemas"]
    typed = {
        schema["properties"]["type"]["const"]: name
        for name, schema in schemas.items()
        if name.endswith("Message") and "type" in schema.get("properties", {})
    }
    assert set(typed) == set(MESSAGE_TYPES)
    for kind, name in typed.items():
        (example,) = schemas[name]["examples"]
        assert example["type"] == kind
        validator(document, f"#/components/schemas/{name}").validate(example)
        parse_message(example)
    (envelope,) = schemas["MessageEnvelope"]["examples"]
    validator(document, "#/components/schemas/MessageEnvelope").validate(envelope)
    build_job(Request.from_item(envelope), now=0.0, accounts=frozenset({"default"}))
    (batch,) = schemas["BatchRequest"]["examples"]
    validator(document, "#/components/schemas/BatchRequest").validate(batch)


def test_each_request_body_example_is_valid_against_the_body_schema(document):
    """The examples /docs offers for each enqueue route: one per message type bare, one
    envelope, one batch; each matches the route's body schema."""
    named = {}
    for route in (("post", "/v1/messages"), ("post", "/v1/messages/batch")):
        content = document["paths"][route[1]][route[0]]["requestBody"]["content"]
        body = content["application/json"]
        check = validator(document, body["schema"]["$ref"])
        for name, example in body["examples"].items():
            check.validate(example["value"])
            named[name] = example["value"]
    assert set(named) == {*MESSAGE_TYPES, "envelope", "batch"}


def phone_like():
    """Strings near the rule's edges: digits, a +, the decoration people type, other text."""
    return st.text(alphabet="0123456789+ ().-x٣\t", max_size=22)


@given(phone_like())
def test_the_to_pattern_accepts_exactly_what_the_validator_accepts(raw):
    """A client that checks `to` against the document's pattern agrees with the service."""
    try:
        normalise_phone(raw)
        accepted = True
    except ValueError:
        accepted = False
    assert (re.search(PHONE_PATTERN, raw) is not None) == accepted, raw


def test_the_documents_to_pattern_is_the_validators(document):
    """Every message type's `to` carries that pattern."""
    for name in ("TextMessage", "TemplateMessage", "InteractiveMessage"):
        assert document["components"]["schemas"][name]["properties"]["to"]["pattern"] == (
            PHONE_PATTERN
        )


@pytest.mark.processes
def test_every_request_body_example_is_enqueued_by_a_real_service(redis_url, tmp_path):
    """What /docs offers to try is accepted as it is: 202 for each example."""
    service = Service(tmp_path, broker_url=redis_url, ingest_tokens=TOKEN).start()
    try:
        with httpx.Client(base_url=service.url, timeout=10) as http:
            document = http.get("/openapi.json").json()
            for path in ("/v1/messages", "/v1/messages/batch"):
                body = document["paths"][path]["post"]["requestBody"]["content"]
                for name, example in body["application/json"]["examples"].items():
                    answer = http.post(
                        path, json=example["value"], headers={"Authorization": f"Bearer {TOKEN}"}
                    )
                    assert answer.status_code == 202, (name, answer.text)
    finally:
        service.stop()


def property_schema(document, model: str, name: str):
    """One property's schema in a model of the document, a reference to another resolved."""
    schema = document["components"]["schemas"][model]["properties"][name]
    ref = schema.get("$ref") or next(
        (s["$ref"] for s in schema.get("anyOf", ()) if "$ref" in s), None
    )
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


@pytest.mark.parametrize(
    ("model", "name", "values"),
    [("JobView", "state", list(JobState)), ("ReceiptView", "status", list(ReceiptStatus))],
    ids=["job state", "receipt status"],
)
def test_the_documents_states_are_the_enums_the_service_keeps(document, model, name, values):
    """A job's states (and its receipt's statuses) in the document are exactly the enum's: one
    list, so a state added in Python is in the document, and none the service never answers."""
    assert property_schema(document, model, name)["enum"] == [value.value for value in values]
