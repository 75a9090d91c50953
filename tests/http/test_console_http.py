"""The web console's rules over HTTP, against a real uvicorn and a real Redis: off without a
password, login, the session cookie, CSRF on every change, the login brake, masking."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.console import PASSWORD, login, login_form
from tests.support.jobs import add_job, park, take
from tests.support.messages import template
from tests.support.processes import wait_for
from tests.support.serve import Service
from worker.service.operations import hold_template
from worker.service.runtime import Runtime
from worker.settings import Settings
from worker.store.claims import Execution
from worker.store.ratelimit import RateLimit
from worker.store.states import JobState

pytestmark = pytest.mark.processes  # every test here runs real child processes

API_KEY = "sk_console_secret_9a8b7c6d"
PHONE = "905321234567"
COOKIE = "msgworker_console="
MESSAGE = {"to": PHONE, "type": "text", "text": {"body": "hello"}}


@pytest.fixture
def runtime(redis_url):
    runtime = Runtime(Settings(broker_url=redis_url, _env_file=None))
    yield runtime
    runtime.close()


@pytest.fixture
def service(redis_url, tmp_path):
    server = Service(
        tmp_path, broker_url=redis_url, console_password=PASSWORD, api_key=API_KEY
    ).start()
    yield server
    server.stop()
    assert PASSWORD not in server.log.read_text()
    assert API_KEY not in server.log.read_text()


@pytest.fixture
def http(service):
    with httpx.Client(base_url=service.url, timeout=10) as client:
        yield client


def test_the_console_is_off_without_a_password(redis_url, tmp_path):
    """No CONSOLE_PASSWORD: every console path answers 404; health still answers."""
    server = Service(tmp_path, broker_url=redis_url).start()
    try:
        with httpx.Client(base_url=server.url) as http:
            assert http.get("/console").status_code == 404
            assert http.get("/console/login").status_code == 404
            assert http.post("/console/login", data={"password": "x"}).status_code == 404
            assert http.get("/healthz").status_code == 200
    finally:
        server.stop()


def test_pages_without_a_session_go_to_login_and_changes_are_refused(http, runtime):
    """Without a session: every page redirects to the login page; every POST is 403."""
    for path in ("/console", "/console/dead-letters", "/console/jobs", "/console/dead-letters/x"):
        answer = http.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == "/console/login"
    answer = http.post("/console/accounts/default/halt", data={"reason": "x", "csrf": "x"})
    assert answer.status_code == 403
    assert runtime.switches.halted("default") is None


def test_a_wrong_password_is_401_without_a_session(http):
    """Wrong password: the login page again with 401 (a new form), and no session cookie set."""
    answer = http.post("/console/login", data=login_form(http, "not-the-password"))
    assert answer.status_code == 401
    assert "msgworker_console" not in answer.headers.get("set-cookie", "")
    assert "Wrong password" in answer.text
    assert http.get("/console").status_code == 303


def test_the_session_cookie_is_httponly_strict_and_scoped(http):
    """The right password sets an HttpOnly, SameSite=Strict cookie for /console only."""
    answer = http.post("/console/login", data=login_form(http))
    assert answer.status_code == 303
    (cookie,) = [c.lower() for c in answer.headers.get_list("set-cookie") if COOKIE in c]
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/console" in cookie
    assert "max-age=43200" in cookie  # a night shift: 12 hours
    assert PASSWORD not in answer.headers["set-cookie"]


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(http, runtime):
    """Logged in, a halt without (or with a wrong) CSRF token is 403 and halts nothing."""
    csrf = login(http)
    for data in ({"reason": "test"}, {"reason": "test", "csrf": csrf[:-1] + "x"}):
        answer = http.post("/console/accounts/default/halt", data=data)
        assert answer.status_code == 403
        assert "CSRF" in answer.text
        assert runtime.switches.halted("default") is None
    answer = http.post("/console/accounts/default/halt", data={"reason": "test", "csrf": csrf})
    assert answer.status_code == 303
    assert runtime.switches.halted("default").reason == "test"


def test_a_csrf_token_works_only_with_its_own_session(http, service, runtime):
    """Two operators logged in: each session has its own token, and one session's token sent
    with the other's cookie is refused and changes nothing (one token for all would pass)."""
    with httpx.Client(base_url=service.url, timeout=10) as other:
        mine, theirs = login(http), login(other)
        assert mine != theirs
        for client, token in ((http, theirs), (other, mine)):
            answer = client.post(
                "/console/accounts/default/halt", data={"reason": "test", "csrf": token}
            )
            assert answer.status_code == 403
            assert runtime.switches.halted("default") is None
        answer = other.post(
            "/console/accounts/default/halt", data={"reason": "test", "csrf": theirs}
        )
        assert answer.status_code == 303
    assert runtime.switches.halted("default").reason == "test"


def test_halt_and_resume_from_the_console(http, runtime):
    """Halt holds the account's jobs; resume releases them (the CLI's own operations)."""
    csrf = login(http)
    http.post("/console/accounts/default/halt", data={"reason": "billing dispute", "csrf": csrf})
    overview = http.get("/console").text
    assert "billing dispute" in overview
    assert "by the operator, until resumed" in overview
    assert "80/s, 4800/min" in overview  # the limits its calls are paced by
    answer = http.post("/console/accounts/default/resume", data={"csrf": csrf})
    assert answer.status_code == 303
    assert runtime.switches.halted("default") is None
    assert http.post("/console/accounts/nobody/resume", data={"csrf": csrf}).status_code == 404


def test_logout_ends_the_session_everywhere(http, service):
    """After logout the old cookie opens nothing, even replayed by another client."""
    csrf = login(http)
    cookie = http.cookies.get("msgworker_console")
    assert http.post("/console/logout", data={"csrf": csrf}).status_code == 303
    with httpx.Client(base_url=service.url, cookies={"msgworker_console": cookie}) as other:
        assert other.get("/console").status_code == 303


def test_pages_forbid_framing_caching_and_foreign_resources(http):
    """Every console answer carries a strict CSP, no framing, no caching, no referrer to other
    sites."""
    login(http)
    for path in ("/console", "/console/login", "/console/dead-letters"):
        headers = http.get(path).headers
        assert "default-src 'none'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"
        assert headers["referrer-policy"] == "same-origin"


def test_parameters_out_of_range_are_400_pages_with_the_headers(http):
    """A page number or filter out of range, or a path no route serves: a page with the
    console's headers, 400 (404, 405), never a 500 or the service's JSON."""
    login(http)
    asked = [
        ({"page_no": "4611686018427387904"}, 400),
        ({"page_no": "0"}, 400),
        ({"page_no": "-1"}, 400),
        ({"page_no": "two"}, 400),
        ({"code": "X" * 65}, 400),
        ({"account": "no such/account"}, 400),
        ({"done": "purged", "n": "-1"}, 400),
        ({"page_no": "10000"}, 200),
        ({"start": "-1"}, 400),
        ({"start": "4611686018427387904"}, 400),
        ({"code": "BILL_001", "start": "120"}, 200),
    ]
    for params, status in asked:
        answer = http.get("/console/dead-letters", params=params)
        assert answer.status_code == status, params
        assert "default-src 'none'" in answer.headers["content-security-policy"], params
        assert answer.headers["content-type"].startswith("text/html"), params
    assert "out of range (page_no)." in http.get("/console/dead-letters?page_no=0").text
    for params, status in (
        ({"listing": "nothing"}, 400),
        ({"listing": "held", "page_no": "0"}, 400),
    ):
        assert http.get("/console/job-list", params=params).status_code == status, params
    for method, path in (("GET", "/console/nothing-here"), ("POST", "/console")):
        answer = http.request(method, path)
        assert answer.status_code in {404, 405}
        assert answer.headers["x-frame-options"] == "DENY"


def test_the_due_and_scheduled_counts_list_their_jobs(http, runtime):
    """3 jobs due now and 2 for tomorrow (no worker takes them): the overview's counts link to
    lists of exactly those jobs, and a second page of each is empty."""
    due = [runtime.producer.enqueue({**MESSAGE, "text": {"body": f"now {i}"}}) for i in range(3)]
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    later = [
        runtime.producer.enqueue({**MESSAGE, "text": {"body": f"later {i}"}}, send_at=tomorrow)
        for i in range(2)
    ]
    login(http)
    overview = http.get("/console").text
    assert 'href="/console/job-list?listing=due"><b id="due">3<' in overview
    assert 'href="/console/job-list?listing=scheduled"><b id="scheduled">2<' in overview
    for listing, ids in (("due", due), ("scheduled", later)):
        page = http.get("/console/job-list", params={"listing": listing, "account": "default"})
        assert page.status_code == 200
        assert f'id="list-total">{len(ids)} in all<' in page.text
        listed = re.findall(r'<a href="/console/jobs\?id=([0-9a-f]{32})">', page.text)
        assert sorted(listed) == sorted(ids), listing
        second = http.get("/console/job-list", params={"listing": listing, "page_no": 2})
        assert 'id="empty"' in second.text


def test_the_console_shows_only_its_own_messages(http, runtime):
    """Text in the address never shows as the console's: a free `done` is refused, a filter it
    does not know is not written back; a purge's report is its own fixed words."""
    lure = "Session expired. Log in again at https://evil.example/login"
    login(http)
    answer = http.get("/console/dead-letters", params={"done": lure})
    assert answer.status_code == 400
    assert "evil.example" not in answer.text
    answer = http.get("/console/dead-letters", params={"code": lure[:60], "account": "evil"})
    assert answer.status_code == 200
    assert "evil" not in answer.text
    assert "No dead letters match" in answer.text
    answer = http.get("/console/dead-letters", params={"done": "purged", "n": "7"})
    assert 'id="done">Purged 7 dead letter(s).<' in answer.text


def test_a_dead_letter_shows_the_phone_masked_and_never_the_key(http, runtime):
    """The list and the record mask the phone; the API key and idempotency key never show."""
    job_id = runtime.producer.enqueue(MESSAGE, idempotency_key="order-77-secret")
    park(runtime, job_id)
    login(http)
    listing = http.get("/console/dead-letters", params={"code": "BILL_001"}).text
    record = http.get(f"/console/dead-letters/{job_id}").text
    for html in (listing, record):
        assert job_id in html
        assert "90532*****67" in html
        assert PHONE not in html
        assert API_KEY not in html
    assert "order-77-secret" not in record


def test_replay_from_the_console_moves_the_code_back_to_the_schedule(http, runtime):
    """Replaying a code runs in the service, shows its progress and empties that code; with no
    worker to send them, the page says the jobs are on the way, not done."""
    ids = [runtime.producer.enqueue(MESSAGE) for _ in range(5)]
    for job_id in ids:
        park(runtime, job_id)
    csrf = login(http)
    data = {"csrf": csrf, "scope": "code", "code": "BILL_001", "account": "", "rate": "50"}
    answer = http.post("/console/dead-letters/replay", data=data)
    assert answer.status_code == 303
    progress_url = answer.headers["location"]

    def replayed() -> bool:
        return '">replayed, 5 on the way<' in http.get(progress_url).text

    wait_for(replayed, timeout_s=20, what="the replay to go through its records")
    progress = http.get(progress_url).text
    assert 'id="replayed">5<' in progress
    assert 'id="on-the-way">5<' in progress
    assert 'id="sent">0<' in progress
    assert ">done<" not in progress
    assert runtime.dead_letters.counts() == {}
    assert {runtime.jobs.get(i).state for i in ids} <= {JobState.QUEUED, JobState.SCHEDULED}


def test_replay_of_a_code_leaves_opted_out_jobs_unless_the_box_is_ticked(http, runtime):
    """Replaying WA_131050 from the console sends none of the users who stopped marketing; with
    the box ticked it sends them."""
    ids = [runtime.producer.enqueue(MESSAGE) for _ in range(2)]
    for job_id in ids:
        park(runtime, job_id, code="WA_131050", reason="opted_out")
    csrf = login(http)
    data = {"csrf": csrf, "scope": "code", "code": "WA_131050", "account": "", "rate": "50"}
    left = http.post("/console/dead-letters/replay", data=data)
    assert "leaving 2 opted out" in http.get(left.headers["location"]).text
    assert runtime.dead_letters.counts() == {"WA_131050": 2}
    http.post("/console/dead-letters/replay", data={**data, "include_opted_out": "yes"})
    wait_for(
        lambda: runtime.dead_letters.counts() == {}, timeout_s=20, what="both replayed at last"
    )


def test_purge_asks_for_confirmation_first(http, runtime):
    """Purge without confirmation shows what would go and removes nothing; confirmed, it goes."""
    ids = [runtime.producer.enqueue(MESSAGE) for _ in range(2)]
    for job_id in ids:
        park(runtime, job_id)
    csrf = login(http)
    data = {"csrf": csrf, "scope": "ids", "id": ids}
    asked = http.post("/console/dead-letters/purge", data=data)
    assert asked.status_code == 200
    assert "2 dead letter(s) will be removed" in asked.text
    assert runtime.dead_letters.counts() == {"BILL_001": 2}
    done = http.post("/console/dead-letters/purge", data={**data, "confirmed": "yes"})
    assert done.status_code == 303
    assert runtime.dead_letters.counts() == {}
    assert "Purged 2 dead letter(s)." in http.get(done.headers["location"]).text


def test_job_lookup_shows_state_and_history(http, runtime):
    """A job's page shows its state and history; an unknown id is a 404 page."""
    job_id = runtime.producer.enqueue(MESSAGE)
    login(http)
    page = http.get("/console/jobs", params={"id": job_id})
    assert page.status_code == 200
    assert 'id="job-state">queued<' in page.text
    assert "enqueued" in page.text
    assert http.get("/console/jobs", params={"id": "0" * 32}).status_code == 404
    assert http.get("/console/jobs", params={"id": "../../etc"}).status_code == 404


def test_login_page_answers_with_redis_down(tmp_path):
    """Redis unreachable: the login page answers; a page with a session to check is a 503 page,
    a login attempt too (no cookie is set)."""
    server = Service(
        tmp_path,
        broker_url="redis://127.0.0.1:9/0",
        console_password=PASSWORD,
        redis_timeout_s="0.5",
    ).start()
    try:
        with httpx.Client(base_url=server.url, cookies={"msgworker_console": "x" * 43}) as http:
            assert http.get("/console/login").status_code == 200
            answer = http.get("/console")
            assert answer.status_code == 503
            assert "Redis does not answer" in answer.text
            answer = http.post("/console/login", data=login_form(http))
            assert answer.status_code == 503
            assert "set-cookie" not in answer.headers
    finally:
        server.stop()


def test_a_new_password_ends_every_session(redis_url, tmp_path, runtime):
    """Sessions are bound to the password: after a change (and restart) old cookies open nothing."""
    first = Service(tmp_path, broker_url=redis_url, console_password=PASSWORD).start()
    with httpx.Client(base_url=first.url) as http:
        login(http)
        cookie = http.cookies.get("msgworker_console")
    first.stop()
    second = Service(tmp_path, broker_url=redis_url, console_password=PASSWORD + "-new").start()
    try:
        with httpx.Client(base_url=second.url, cookies={"msgworker_console": cookie}) as http:
            assert http.get("/console").status_code == 303
    finally:
        second.stop()


def test_a_halt_the_gateway_caused_says_it_resumes_by_itself(http, runtime):
    """A halt recorded from an AUTH_001 answer (no operator) is shown as the Gateway's."""
    login(http)
    runtime.redis.hset(
        runtime.keys.halt("default"),
        mapping={"since": repr(time.time()), "code": "AUTH_001", "reason": "Invalid API key"},
    )
    overview = http.get("/console").text
    assert "HALTED AUTH_001" in overview
    assert "by the Gateway, resumes by itself once a probe passes" in overview


def test_a_held_template_is_listed_and_released_from_the_console(http, runtime):
    """The overview lists the held template with its jobs, a release button and the runbook; a
    release without the CSRF token changes nothing; with it, the held job is queued again."""
    hold_template(runtime, "default", "spring_sale", "en_US")
    add_job(runtime.jobs, "t1", message=template())
    claim = runtime.transitions.begin(
        Execution("t1", take(runtime, "t1"), "h"),
        now=time.time(),
        lease_s=30,
        probe_interval_s=30,
        rate=RateLimit(1000, 100_000),
    )
    assert claim.verdict == "held"
    csrf = login(http)
    overview = http.get("/console").text
    row = re.search(
        r'<tr data-account="default" data-template="spring_sale:en_US">.*?</tr>',
        overview,
        re.DOTALL,
    )
    assert row is not None
    assert "operator" in row.group()
    assert '<td class="jobs">1</td>' in row.group()
    assert "/console/runbooks#a-template-is-paused-or-disabled" in overview
    form = {"name": "spring_sale", "language": "en_US"}
    release = "/console/accounts/default/templates/release"
    assert http.post(release, data=form).status_code == 403
    assert runtime.jobs.get("t1").state is JobState.HELD
    bad = {"name": "Spring Sale", "language": "en_US", "csrf": csrf}
    assert http.post(release, data=bad).status_code == 400
    assert http.post(release, data={**form, "csrf": csrf}).status_code == 303
    assert runtime.jobs.get("t1").state is JobState.QUEUED
    assert runtime.templates.held("default") == []
    assert 'id="templates"' not in http.get("/console").text
