"""POST /webhooks/gateway on a real uvicorn and a real Redis: Meta's template reviews hold and
release an account's template, found by its waba_id; a failed 132015 holds its job and
template."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.http.test_webhooks import SECRET, T0, metric, post, snapshot, status, webhook
from tests.support.jobs import add_job, send, take
from tests.support.messages import template
from tests.support.serve import Service
from worker.store.claims import Execution
from worker.store.keys import Keys
from worker.store.ratelimit import RateLimit
from worker.store.states import JobState
from worker.store.templates import TEMPLATE_PAUSED, TemplateHolds

pytestmark = pytest.mark.processes  # msgworker serve answers every test here

KEYS = Keys()
ACCOUNTS = """
[accounts.default]
api_key_env = "MSGWORKER_API_KEY"
waba_id = "111"

[accounts.b]
api_key_env = "B_KEY"
waba_id = "222"
"""


@pytest.fixture
def store_keys():
    return KEYS


@pytest.fixture(scope="module")
def service(redis_server, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("serve")
    (workdir / "accounts.toml").write_text(ACCOUNTS)
    server = Service(
        workdir,
        broker_url=redis_server.url,
        webhook_secret=SECRET,
        accounts_file=str(workdir / "accounts.toml"),
    ).start()
    yield server
    server.stop()


@pytest.fixture
def http(service):
    with httpx.Client(base_url=service.url, timeout=10) as client:
        yield client


@pytest.fixture
def holds(redis_client):
    return TemplateHolds(redis_client, KEYS)


def review(event, *, waba_id="222", name="spring_sale", language="en_US"):
    value = {
        "event": event,
        "message_template_id": 1234,
        "message_template_name": name,
        "message_template_language": language,
        "reason": "NONE",
    }
    change = {"field": "message_template_status_update", "value": value}
    return {"object": "whatsapp_business_account", "entry": [{"id": waba_id, "changes": [change]}]}


def begin(runtime, job_id):
    execution = Execution(job_id, take(runtime, job_id), holder=f"test-{job_id}")
    return runtime.transitions.begin(
        execution, now=time.time(), lease_s=30, probe_interval_s=30, rate=RateLimit(1000, 100_000)
    )


def test_paused_holds_the_template_of_the_account_its_waba_id_names(http, runtime, holds):
    """PAUSED for waba 222: account b's template is held, b's job using it is held at its begin;
    account default's job with the same template goes."""
    assert post(http, review("PAUSED")).status_code == 200
    assert [(h.name, h.language, h.reason) for h in holds.held("b")] == [
        ("spring_sale", "en_US", "paused")
    ]
    assert holds.held("default") == []
    add_job(runtime.jobs, "b1", account="b", message=template())
    add_job(runtime.jobs, "d1", message=template())
    assert (begin(runtime, "b1").verdict, begin(runtime, "d1").verdict) == ("held", "go")
    assert metric(http, 'msgworker_template_events_total{result="held"}') == 1


def test_reinstated_releases_every_held_job_once(http, runtime, holds):
    """DISABLED then REINSTATED: the held job is queued again, once, and its next begin calls."""
    post(http, review("DISABLED", name="old_offer", language="tr"))
    add_job(runtime.jobs, "b2", account="b", message=template("old_offer", "tr"))
    assert begin(runtime, "b2").verdict == "held"
    assert post(http, review("REINSTATED", name="old_offer", language="tr")).status_code == 200
    assert post(http, review("REINSTATED", name="old_offer", language="tr")).status_code == 200
    assert holds.held("b") == []
    assert runtime.jobs.get("b2").state is JobState.QUEUED
    assert begin(runtime, "b2").verdict == "go"


def test_a_failed_132015_holds_the_job_and_its_template(http, runtime, holds):
    """The shipped routing holds on 132015: the sent job is held, the template too."""
    add_job(runtime.jobs, "t1", message=template("welcome", "en"))
    send(runtime, "t1", "wamid.t1")
    assert post(http, webhook(status("wamid.t1", "failed", code=132015))).status_code == 200
    job = runtime.jobs.get("t1")
    assert (job.state, job.held_reason) == (JobState.HELD, TEMPLATE_PAUSED)
    [held] = holds.held("default")
    assert (held.name, held.reason, held.code, held.jobs) == ("welcome", "paused", "WA_132015", 1)


def test_an_event_for_no_account_of_ours_is_counted_and_ignored(http, redis_client):
    """An unknown waba_id: 200, nothing written, counted unknown_account."""
    before = snapshot(redis_client)
    assert post(http, review("PAUSED", waba_id="999")).status_code == 200
    assert snapshot(redis_client) == before
    assert metric(http, 'msgworker_template_events_total{result="unknown_account"}') == 1


@pytest.mark.parametrize(
    "body",
    [
        review("PAUSED", name="Bad Name"),
        review("PAUSED", language=""),
        review("REINSTATED", name=None),
        review("DISABLED", waba_id=7),
    ],
)
def test_a_malformed_event_acted_on_is_400_and_changes_nothing(http, redis_client, body):
    before = snapshot(redis_client)
    assert post(http, body).status_code == 400
    assert snapshot(redis_client) == before


def test_other_reviews_are_acknowledged_and_ignored(http, redis_client):
    """FLAGGED, REJECTED, a review without a template: 200, nothing held."""
    before = snapshot(redis_client)
    for body in (review("FLAGGED"), review("REJECTED", name=None), review(None)):
        assert post(http, body).status_code == 200
    assert post(http, webhook(status("wamid.none", "read", T0))).status_code == 200
    redis_client.delete(KEYS.early_arrivals, KEYS.early_statuses("wamid.none"))
    assert snapshot(redis_client) == before
