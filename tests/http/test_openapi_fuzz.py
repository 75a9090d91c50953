"""Property-based tests over the service's own OpenAPI document (schemathesis): every operation,
with data that fits the document and data that breaks it, never answers 500, never hangs, answers
as the document says, and a refused request changes nothing in Redis."""

from __future__ import annotations

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.keyspace import digest
from tests.support.processes import RedisServer
from tests.support.serve import TOKEN, Service
from worker.http.app import create_app
from worker.settings import Settings

pytestmark = pytest.mark.processes  # every test here runs real child processes

WEBHOOK_SECRET = "whsec_fuzz_0123456789abcdef"  # noqa: S105 - a test secret
# Longer than any answer takes on this machine, far shorter than a hang.
REQUEST_TIMEOUT_S = 10


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("openapi-fuzz")
    server = RedisServer(workdir)
    server.start()
    service = Service(
        workdir, broker_url=server.url, ingest_tokens=TOKEN, webhook_secret=WEBHOOK_SECRET
    ).start()
    client = redis.Redis.from_url(server.url)
    yield service, client
    client.close()
    service.stop()
    server.stop()


def document() -> dict[str, object]:
    """The document the service serves with ingest and webhooks on (made as serve makes it;
    nothing connects until a request needs Redis)."""
    settings = Settings(
        broker_url="redis://127.0.0.1:1/0",
        ingest_tokens=TOKEN,
        webhook_secret=WEBHOOK_SECRET,
        _env_file=None,
    )
    return create_app(settings).openapi()


schema = schemathesis.openapi.from_dict(document())
# What every answer must be, whatever was sent: no 5xx, and a status, content type, body and
# headers the document declares. (Whether the document describes every rule validation applies,
# so that schema-valid data is always accepted, is not what this test is about: the webhook's
# body is Meta's, open-ended, and is declared as any object.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def credentials(path: str) -> dict[str, str]:
    secret = WEBHOOK_SECRET if path.startswith("/webhooks/") else TOKEN
    return {"Authorization": f"Bearer {secret}"}


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_operation_answers_500_hangs_or_changes_state_when_it_refuses(case, stack):
    """Every operation, fed valid and invalid data: never a 500 or a hang, answers as the
    document declares, and a 4xx leaves Redis as it was."""
    service, client = stack
    before = digest(client)
    response = case.call_and_validate(
        base_url=service.url,
        headers=credentials(case.path),
        timeout=REQUEST_TIMEOUT_S,
        checks=CHECKS,
    )
    if 400 <= response.status_code < 500:
        assert digest(client) == before, (response.status_code, response.text[:500])
