"""The console tells the night shift what to do, in a real headless Chromium on real processes
(msgworker serve, a worker, the sandbox Gateway posting its webhooks, Redis): counts that open
the jobs behind them, each incident's next step and runbook, a job's delivery error in words
and its dead letter, a replay that waits behind the billing breaker said so, and the chart.

With CONSOLE_SCREENSHOTS=docs/screenshots the screenshots land there (docs/console.md's).
"""

from __future__ import annotations

import itertools
import re

import httpx
import pytest

from tests.support.cluster import API_KEY, start_worker, worker_env
from tests.support.console import PASSWORD, log_in
from tests.support.processes import wait_for
from tests.support.serve import Service
from worker.http.console.render import HEADERS
from worker.store.states import JobState

pytestmark = pytest.mark.e2e

SECRET = "whsec_console_0123456789abcdef"  # noqa: S105 - a test secret
PHONE = "905321234567"
UNREACHABLE = "905329999999"  # the sandbox fails its deliveries with 131026


def text(n: int, to: str = PHONE) -> dict:
    return {"to": to, "type": "text", "text": {"body": f"invoice {n} is ready"}}


@pytest.fixture
def stack(redis_url, sandbox, tmp_path):
    """serve (console and webhooks on) and one worker; the sandbox posts its webhooks to serve.
    Calls may take 15 s: a slow probe is how a replay comes to wait behind the breaker."""
    service = Service(
        tmp_path,
        broker_url=redis_url,
        console_password=PASSWORD,
        api_key=API_KEY,
        webhook_secret=SECRET,
    ).start()
    sandbox.configure(
        webhook_url=f"{service.url}/webhooks/gateway",
        webhook_secret=SECRET,
        failing_recipients=[UNREACHABLE],
    )
    env = worker_env(redis_url, sandbox.url, http_timeout_s="15")
    worker = start_worker(env, tmp_path / "worker.log", concurrency=4)
    yield service
    worker.stop()
    service.stop()
    assert PASSWORD not in service.log.read_text()


def test_held_count_opens_the_held_jobs(browser, stack, runtime, shots):
    """An operator's halt holds 3 jobs: "held 3" links to those 3 jobs, the incident says to
    resume once the reason is dealt with and links the halt runbook."""
    runtime.switches.halt("default", reason="customer asked us to pause")
    ids = runtime.producer.enqueue_many([text(i) for i in range(3)])
    wait_for(lambda: runtime.switches.held_count("default") == 3, what="3 held")
    page = browser
    log_in(page, stack.url)
    incident = page.inner_text("#incidents .incident[data-account=default]")
    assert "halted (MANUAL)" in incident
    assert "Resume the account once the reason above is dealt with" in incident
    assert page.get_attribute("#incidents a.runbook", "href") == "/console/runbooks#sending-halted"

    held = page.locator("tr[data-account=default] td.held a")
    assert held.inner_text() == "3"
    held.click()
    page.wait_for_url("**/console/job-list?listing=held&account=default")
    assert page.inner_text("#list-total").startswith("3")
    rows = page.locator("#job-list tbody tr")
    assert rows.count() == 3
    listed = {rows.nth(i).locator("td").first.inner_text() for i in range(3)}
    assert listed == set(ids)
    assert {rows.nth(i).locator("td").nth(2).inner_text() for i in range(3)} == {"held"}
    page.screenshot(path=shots / "held-list.png", full_page=True)

    rows.first.locator("a").click()
    assert page.inner_text("#job-state") == "held"


def test_a_billing_incident_says_what_to_do_and_the_chart_shows_it(
    browser, stack, sandbox, runtime, shots
):
    """20 sent, then the balance runs out and 6 park BILL_001: the overview's incident says to
    top up (the breaker then closes by itself) and links the billing runbook, which the console
    serves; the chart, inline SVG with no script, shows the sends and the BILL_001 answers."""
    sent = runtime.producer.enqueue_many([text(i) for i in range(20)])
    wait_for(lambda: all(runtime.jobs.get(i).state is JobState.SENT for i in sent), what="20 sent")
    sandbox.configure(balance=0.0)
    runtime.producer.enqueue_many([text(i) for i in range(20, 26)])
    wait_for(lambda: runtime.dead_letters.counts().get("BILL_001") == 6, what="6 parked")
    page = browser
    log_in(page, stack.url)
    step = page.inner_text("#incidents .incident[data-account=default]")
    assert "billing breaker open (BILL_001)" in step
    assert "Top up the balance: the breaker closes by itself on its next probe" in step

    def chart_has_both() -> bool:
        page.goto(f"{stack.url}/console")
        legend = page.inner_text("#chart-legend")
        return "OK 20" in legend and "BILL_001 6" in legend

    # The serve process folds each 10 s once it is over: within two buckets.
    wait_for(chart_has_both, timeout_s=40, what="the chart to show 20 sent and 6 parked")
    titles = {
        title.split()[0] for title in page.locator("#chart svg rect title").all_text_contents()
    }
    assert titles == {"OK", "BILL_001"}
    assert page.locator("#chart polyline").count() == 1
    answer = httpx.get(f"{stack.url}/console/login")
    assert answer.headers["content-security-policy"] == HEADERS["Content-Security-Policy"]
    assert "<script" not in page.content()
    page.screenshot(path=shots / "overview.png", full_page=True)
    page.locator("#incidents").screenshot(path=shots / "incident.png")

    page.click("#incidents a.runbook")
    page.wait_for_url("**/console/runbooks#balance-ran-out-bill_001")
    section = page.inner_text("section#balance-ran-out-bill_001")
    assert "Top up the balance, then drain" in section
    assert "msgworker dlq replay --code BILL_001" in section


def test_an_undelivered_job_shows_its_error_in_words_and_its_dead_letter(
    browser, stack, runtime, shots
):
    """WhatsApp fails a sent message (131026): the job's page says the error as text, not a
    dict, and links its dead letter, whose page links back to the job."""
    job_id = runtime.producer.enqueue(text(1, to=UNREACHABLE))
    wait_for(lambda: runtime.dead_letters.get(job_id) is not None, what="parked undelivered")
    page = browser
    log_in(page, stack.url)
    page.goto(f"{stack.url}/console/jobs?id={job_id}")
    assert page.inner_text("#job-state") == "parked"
    delivery = page.inner_text("#delivery")
    assert delivery.startswith("failed at ")
    assert re.search(r"131026 \S", page.inner_text("#delivery-error"))
    assert "{" not in delivery
    assert "'code'" not in delivery
    page.screenshot(path=shots / "job-undelivered.png", full_page=True)

    page.click("#dead-letter")
    page.wait_for_url(f"**/console/dead-letters/{job_id}")
    assert "undelivered" in page.inner_text("#record")
    page.click("#job-link")
    page.wait_for_url(f"**/console/jobs?id={job_id}")
    assert page.inner_text("#job-state") == "parked"


def test_a_replay_behind_the_breaker_is_not_done_until_sent(
    browser, stack, sandbox, runtime, shots
):
    """14 parked BILL_001, balance topped up, the Gateway slow (10 s a call): the replay's probe
    is out and the other 13 wait behind the breaker. The page says they wait, never done, until
    every one is sent; a waiting job's history has its waits on one line."""
    sandbox.configure(balance=0.0)
    ids = runtime.producer.enqueue_many([text(i) for i in range(14)])
    wait_for(lambda: runtime.dead_letters.counts().get("BILL_001") == 14, what="14 parked")
    sandbox.post("/sandbox/topup", {"amount": 10.0})
    sandbox.configure(latency_ms=10_000)
    page = browser
    log_in(page, stack.url)
    page.goto(f"{stack.url}/console/dead-letters?code=BILL_001")
    page.fill(".whole-code input[name=rate]", "50")
    page.click("#replay-code")
    page.wait_for_url("**/console/replays/*")
    replay_url = page.url

    def waiting() -> int:
        page.goto(replay_url)
        return int(page.inner_text("#waiting"))

    # Each look loads the page in Chromium: on a loaded 2-core CI machine that is slow.
    wait_for(lambda: waiting() >= 10, timeout_s=45, what="replayed jobs waiting behind it")
    assert int(page.inner_text("#replayed")) == 14
    state = page.inner_text("#state")
    assert "waiting behind the billing breaker" in state
    assert "done" not in state
    assert "behind the billing breaker" in page.inner_text("#breaker-note")
    page.screenshot(path=shots / "replay-waiting.png", full_page=True)

    def waits(job_id: str) -> int:
        return sum(e.get("action") == "breaker_wait" for e in runtime.jobs.get(job_id).history)

    wait_for(lambda: max(map(waits, ids)) >= 3, timeout_s=20, what="a job with three waits")
    waiter = max(ids, key=waits)
    page.goto(f"{stack.url}/console/jobs?id={waiter}")
    collapsed = page.inner_text("#history tr.collapsed")
    assert re.search(r"waited behind the billing breaker \u00d7\d+, from \S+ to \S+", collapsed)
    events = [cell.strip() for cell in page.locator("#history td:nth-child(2)").all_inner_texts()]
    assert not any(a == b and a.startswith("waited") for a, b in itertools.pairwise(events))

    sandbox.configure(latency_ms=0)
    page.goto(replay_url)
    page.locator("#state", has_text="done").wait_for(timeout=60_000)
    assert page.inner_text("#sent") == "14"
    assert page.inner_text("#waiting") == "0"
    assert all(runtime.jobs.get(i).state is JobState.SENT for i in ids)
