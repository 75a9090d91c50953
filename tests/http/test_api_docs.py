"""/docs (Swagger UI) and /redoc in a real headless Chromium, served by a real ``msgworker
serve``: each page renders the service's own document from the package's own files, asks
nothing of any other host, and breaks no rule of its Content-Security-Policy."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.browser import chromium_page
from tests.support.console import PASSWORD
from tests.support.serve import TOKEN, Service

pytestmark = pytest.mark.processes  # every test here runs real child processes

# Redoc's bundle always shows its makers' badge from their CDN; the policy refuses it (nothing
# leaves the machine), and the browser says so. Any other refusal is a failure.
REDOC_BADGE = "https://cdn.redoc.ly/"
# Long enough for a cold browser to run a 1.7 MB bundle on a busy machine.
RENDER_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """serve with ingest and the console on (Redis is not needed to show the document)."""
    server = Service(
        tmp_path_factory.mktemp("api-docs"),
        broker_url="redis://127.0.0.1:1/0",
        ingest_tokens=TOKEN,
        console_password=PASSWORD,
    ).start()
    yield server
    server.stop()


def render(url: str, ready: str) -> tuple[set[str], list[str]]:
    """Open the page and wait until ``ready`` (a selector) is shown; the origins it asked
    (requests the policy refused never leave, and are not counted) and the refusals the
    browser reported."""
    asked: list[str] = []
    refused: set[str] = set()
    refusals: list[str] = []
    with chromium_page() as page:
        page.on("request", lambda request: asked.append(request.url))
        page.on(
            "requestfailed",
            lambda request: refused.add(request.url) if request.failure == "csp" else None,
        )
        page.on(
            "console",
            lambda message: (
                refusals.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        page.goto(url)
        page.wait_for_selector(ready, timeout=RENDER_TIMEOUT_MS)
        # What the rendered page asks next (Redoc's badge) is asked by the time it is idle.
        page.wait_for_load_state("networkidle", timeout=RENDER_TIMEOUT_MS)
    return {_origin(url) for url in asked if url not in refused}, refusals


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def test_swagger_ui_renders_the_document_from_the_service_alone(service):
    """/docs shows every ingest operation; every request went to the service; no refusal."""
    origins, refusals = render(
        f"{service.url}/docs", '.opblock-summary-path[data-path="/v1/messages/batch"]'
    )
    assert origins == {service.url}
    assert refusals == []


def test_redoc_renders_the_document_from_the_service_alone(service):
    """/redoc shows the operations; every request went to the service; the only refusal is
    the bundle's badge from elsewhere."""
    origins, refusals = render(f"{service.url}/redoc", 'h2:has-text("Enqueue one message")')
    assert origins == {service.url}
    assert [r for r in refusals if REDOC_BADGE not in r] == []


def test_the_pages_need_no_token_and_carry_their_own_policy(service):
    """No token asked; scripts only from the service; a bundle not changed is a 304; nothing
    outside the assets is served; the console keeps its own stricter policy (no scripts)."""
    with httpx.Client(base_url=service.url) as http:
        for path in ("/docs", "/redoc", "/docs/assets/swagger-ui-bundle.js"):
            answer = http.get(path)
            assert answer.status_code == 200, path
            policy = answer.headers["content-security-policy"]
            assert "script-src 'self';" in policy, path
            assert "unsafe" not in policy, path
            assert answer.headers["x-content-type-options"] == "nosniff"
        bundle = http.get("/docs/assets/redoc.standalone.js")
        unchanged = {"If-None-Match": bundle.headers["etag"]}
        assert http.get("/docs/assets/redoc.standalone.js", headers=unchanged).status_code == 304
        assert http.get("/docs/assets/../__init__.py").status_code == 404
        console = http.get("/console/login").headers["content-security-policy"]
        assert "script-src" not in console
        assert console.startswith("default-src 'none'")
