"""The web console in a real headless Chromium (Debian's, driven by Playwright), on real
processes: msgworker serve, a worker, the sandbox Gateway and Redis.

Screenshots of the pages land in the test's tmp dir; with CONSOLE_SCREENSHOTS=docs/screenshots
they are written there instead (how docs/console.md's are made; the browser is in conftest.py).
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.cluster import API_KEY, Sandbox, start_worker, worker_env
from tests.support.console import PASSWORD, log_in
from tests.support.processes import wait_for
from tests.support.serve import Service
from worker.http.console.brake import FAILURES_MAX
from worker.sandbox.server import RunningSandbox, SandboxConfig
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.states import JobState

pytestmark = pytest.mark.e2e

PHONE = "905321234567"


def text(n: int) -> dict:
    return {"to": PHONE, "type": "text", "text": {"body": f"invoice {n} is ready"}}


@pytest.fixture
def sandbox():
    with RunningSandbox(SandboxConfig(api_keys=(API_KEY,))) as running:
        admin = Sandbox(running.url)
        yield admin
        admin.close()


@pytest.fixture
def runtime(redis_url, sandbox):
    runtime = Runtime(
        Settings(broker_url=redis_url, api_base_url=sandbox.url, sandbox=True, _env_file=None)
    )
    yield runtime
    runtime.close()


@pytest.fixture
def stack(redis_url, sandbox, tmp_path):
    """serve with the console on, and one worker sending to the sandbox."""
    env = worker_env(redis_url, sandbox.url)
    worker = start_worker(env, tmp_path / "worker.log", concurrency=4)
    service = Service(
        tmp_path, broker_url=redis_url, console_password=PASSWORD, api_key=API_KEY
    ).start()
    yield service
    service.stop()
    worker.stop()
    assert API_KEY not in worker.log()
    assert PASSWORD not in service.log.read_text()


def test_a_billing_incident_is_seen_and_replayed_after_a_top_up(
    browser, stack, sandbox, runtime, shots
):
    """Balance 0: jobs park BILL_001, the breaker opens, the console shows both; after a top-up
    a replay of the code from the console empties the DLQ and each message is sent once."""
    sandbox.configure(balance=0.0)
    ids = runtime.producer.enqueue_many([text(i) for i in range(12)])
    wait_for(lambda: runtime.dead_letters.counts().get("BILL_001") == 12, what="12 parked")
    page = browser
    log_in(page, stack.url)
    assert "OPEN BILL_001" in page.inner_text("#accounts")
    assert "BILL_001 12" in page.inner_text("#dlq-codes")

    page.click("#dlq-codes a.code")
    assert page.inner_text("#total").startswith("12")
    listing = page.inner_text("#dead-letters")
    assert "90532*****67" in listing
    assert PHONE not in page.content()
    page.screenshot(path=shots / "dead-letters.png", full_page=True)
    page.click("#dead-letters tbody tr:first-child td:nth-child(3) a")
    assert page.inner_text("#to") == "90532*****67"
    assert API_KEY not in page.content()
    page.screenshot(path=shots / "dead-letter.png", full_page=True)
    page.go_back()

    sandbox.post("/sandbox/topup", {"amount": 10.0})
    page.fill(".whole-code input[name=rate]", "20")
    page.click("#replay-code")
    page.wait_for_url("**/console/replays/*")
    # The progress page refreshes itself (no script: the CSP allows none) until it says done.
    page.locator("#state", has_text="done").wait_for(timeout=30_000)
    assert page.inner_text("#replayed") == "12"
    page.screenshot(path=shots / "replay.png", full_page=True)
    wait_for(
        lambda: all(runtime.jobs.get(i).state is JobState.SENT for i in ids),
        timeout_s=30,
        what="all sent after the replay",
    )
    page.goto(f"{stack.url}/console/dead-letters")
    assert page.inner_text("#empty").startswith("No dead letters")
    bodies = sandbox.bodies()
    assert len(bodies) == 12
    assert max(bodies.values()) == 1  # each sent exactly once

    page.goto(f"{stack.url}/console/jobs")
    page.fill("#job-id", ids[0])
    page.click("#lookup")
    assert page.inner_text("#job-state") == "sent"
    assert "replayed" in page.inner_text("#history")
    page.screenshot(path=shots / "job.png", full_page=True)


def test_halt_and_resume_an_account(browser, stack, runtime, sandbox):
    """Halt with a reason from the console: jobs wait; resume: they are sent."""
    page = browser
    log_in(page, stack.url)
    page.click("tr[data-account=default] a.button")
    page.fill("#reason", "customer asked us to pause")
    page.click("#halt")
    page.wait_for_url(f"{stack.url}/console")
    assert "HALTED MANUAL" in page.inner_text("#accounts")
    assert "customer asked us to pause" in page.inner_text("#accounts")
    ids = runtime.producer.enqueue_many([text(i) for i in range(3)])
    wait_for(lambda: runtime.switches.held_count("default") == 3, what="3 held")
    assert sandbox.stats()["requests"] == 0
    page.reload()
    page.click("tr[data-account=default] button.resume")
    page.wait_for_url(f"{stack.url}/console")
    assert page.inner_text("tr[data-account=default] td.halt") == "no"
    wait_for(
        lambda: all(runtime.jobs.get(i).state is JobState.SENT for i in ids),
        timeout_s=30,
        what="the held jobs sent",
    )


def test_a_forged_post_without_the_token_is_refused(browser, stack, runtime):
    """A form posted from the logged-in browser without the CSRF token: 403, nothing halted;
    after logout the pages send the browser back to the login page."""
    page = browser
    log_in(page, stack.url)
    answer = page.request.post(
        f"{stack.url}/console/accounts/default/halt", form={"reason": "forged"}
    )
    assert answer.status == 403
    assert runtime.switches.halted("default") is None
    page.click("header .logout button")
    page.wait_for_url(f"{stack.url}/console/login")
    page.goto(f"{stack.url}/console/dead-letters")
    assert page.url.endswith("/console/login")
    assert httpx.get(f"{stack.url}/console", follow_redirects=False).status_code == 303


def test_a_page_on_another_site_cannot_brake_the_login(browser, stack):
    """A page elsewhere that posts the login form (more often than the brake allows) is refused
    403 and counts no failure: the operator then logs in at once."""
    page = browser
    lure = "http://lure.example/"
    html = (
        f'<form id="f" method="post" action="{stack.url}/console/login">'
        '<input name="password" value="a-guess"><input name="csrf" value="x"></form>'
        '<script>document.getElementById("f").submit()</script>'
    )
    page.route(lure, lambda route: route.fulfill(content_type="text/html", body=html))
    for _ in range(FAILURES_MAX + 2):
        with page.expect_navigation(url=f"{stack.url}/console/login"):
            page.goto(lure)
        assert "another site" in page.inner_text("#error")
    log_in(page, stack.url)
