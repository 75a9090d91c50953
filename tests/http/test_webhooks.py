"""POST /webhooks/gateway on a real uvicorn and a real Redis: delivery statuses on their jobs."""

from __future__ import annotations

import json
import random
import time

import httpx
import pytest

from tests.cli.test_cli import run
from tests.support.processes import wait_for
from tests.support.serve import Service
from worker.http.console.replays import Replays
from worker.store.claims import Execution, Verdict
from worker.store.deadletters import DeadLetters
from worker.store.history import history_event
from worker.store.keys import LANES, Keys
from worker.store.ratelimit import RateLimit
from worker.store.records import NewJob
from worker.store.states import JobState

pytestmark = pytest.mark.processes  # msgworker serve answers every test here

SECRET = "whsec_test_0123456789abcdef"  # noqa: S105 - a test secret
AUTH = {"Authorization": f"Bearer {SECRET}"}
KEYS = Keys()
PHONE = "905321234567"
BODY = {"to": PHONE, "type": "text", "text": {"body": "hi"}}
RATE = RateLimit(per_sec=10_000, per_min=1_000_000)
T0 = 1_760_000_000


@pytest.fixture
def store_keys():
    return KEYS


@pytest.fixture(scope="module")
def service(redis_server, tmp_path_factory):
    server = Service(
        tmp_path_factory.mktemp("serve"), broker_url=redis_server.url, webhook_secret=SECRET
    ).start()
    yield server
    server.stop()


@pytest.fixture
def http(service, redis_url):
    with httpx.Client(base_url=service.url, timeout=10) as client:
        yield client


def send(jobs, transitions, job_id, wamid, *, gen=1):
    """Enqueue (first time), claim and record the send of one job as ``wamid``."""
    now = time.time()
    if gen == 1:
        jobs.add([NewJob(job_id, "default", job_id, BODY, now)], now=now)
    claim = transitions.begin(
        Execution(job_id, gen, "h"), now=now, lease_s=5, probe_interval_s=5, rate=RATE
    )
    assert claim.verdict is Verdict.GO, claim
    transitions.mark_sent(Execution(job_id, gen, "h"), wamid, now=now)


def status(wamid, kind, at=T0, *, code=None):
    item = {"id": wamid, "status": kind, "timestamp": str(at), "recipient_id": PHONE}
    if code is not None:
        item["errors"] = [
            {
                "code": code,
                "title": "Message undeliverable",
                "message": "Message undeliverable",
                "error_data": {"details": "Message failed to send."},
            }
        ]
    return item


def webhook(*statuses):
    value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"}}
    change = {"field": "messages", "value": {**value, "statuses": list(statuses)}}
    return {"object": "whatsapp_business_account", "entry": [{"id": "w", "changes": [change]}]}


def post(http, body, headers=AUTH):
    return http.post("/webhooks/gateway", json=body, headers=headers)


def snapshot(redis_client):
    """Every key and its value, to prove a request changed nothing."""
    return {key: redis_client.dump(key) for key in sorted(redis_client.keys("*"))}


def test_delivered_then_read_shows_on_the_job_and_drops_the_payload(http, jobs, transitions):
    """delivered then read: the delivery, history events, and a record without its payload;
    the metrics count each (as changes: the server is shared by the module's tests)."""
    read = 'msgworker_delivery_statuses_total{account="default",status="read"}'
    ok = 'msgworker_webhook_requests_total{result="ok"}'
    before = (metric(http, read), metric(http, ok))
    send(jobs, transitions, "j1", "wamid.1")
    assert post(http, webhook(status("wamid.1", "sent", T0))).status_code == 200
    assert jobs.get("j1").receipt.status == "sent"
    assert post(http, webhook(status("wamid.1", "delivered", T0 + 2))).status_code == 200
    job = jobs.get("j1")
    assert (job.receipt.status, job.receipt.at, job.receipt.error) == ("delivered", T0 + 2, None)
    assert job.message == BODY
    assert post(http, webhook(status("wamid.1", "read", T0 + 5))).status_code == 200
    job = jobs.get("j1")
    assert job.receipt.status == "read"
    assert job.message == {}  # metadata only once read
    assert [e["event"] for e in job.history][-2:] == ["delivered", "read"]
    assert (metric(http, read), metric(http, ok)) == (before[0] + 1, before[1] + 3)


def test_shuffled_duplicated_and_late_statuses_end_the_same(http, jobs, redis_client, transitions):
    """Any order, any repeats: each job ends on its furthest status, history once each."""
    wamids = [f"wamid.s{i}" for i in range(40)]
    for i, wamid in enumerate(wamids):
        send(jobs, transitions, f"s{i}", wamid)
    events = [
        status(w, k, T0 + n) for w in wamids for n, k in enumerate(["sent", "delivered", "read"])
    ]
    events = events * 3
    random.Random(7).shuffle(events)
    for start in range(0, len(events), 17):
        assert post(http, webhook(*events[start : start + 17])).status_code == 200
    for i in range(40):
        job = jobs.get(f"s{i}")
        assert (job.receipt.status, job.receipt.at) == ("read", T0 + 2)
        names = [e["event"] for e in job.history]
        assert names.count("read") == 1
        assert names.count("delivered") <= 1  # a read that came first makes delivered stale


def test_a_status_before_the_send_is_recorded_is_applied_when_it_is(http, jobs, transitions):
    """Webhooks race the API answer: the early status waits, and finish applies it."""
    response = post(http, webhook(status("wamid.early", "delivered", T0)))
    assert response.status_code == 200
    assert 'msgworker_webhook_requests_total{result="unmatched"}' in http.get("/metrics").text
    send(jobs, transitions, "e1", "wamid.early")
    assert jobs.get("e1").receipt.status == "delivered"


def test_failed_parks_undelivered_and_a_replay_sends_it_once_more(
    http, jobs, redis_client, service, transitions
):
    """failed 131026: parked WA_131026 with the payload; replay lets exactly it through again."""
    send(jobs, transitions, "f1", "wamid.f1")
    assert post(http, webhook(status("wamid.f1", "failed", T0, code=131026))).status_code == 200
    job = jobs.get("f1")
    assert job.state is JobState.PARKED
    assert (job.last_code, job.parked_reason) == ("WA_131026", "undelivered")
    assert job.receipt.status == "failed"
    assert job.receipt.error["code"] == 131026
    assert job.message == {}  # the payload moved into the dead letter
    dlq = DeadLetters(redis_client, KEYS, retention_s=3600)
    record = dlq.get("f1")
    assert (record.code, record.reason, record.message) == ("WA_131026", "undelivered", BODY)
    # A late `sent` after the failure changes nothing.
    assert post(http, webhook(status("wamid.f1", "sent", T0 - 9))).status_code == 200
    assert jobs.get("f1").receipt.status == "failed"
    report = dlq.replay(["f1"], rate_per_s=1000)
    assert report.replayed == 1
    assert jobs.get("f1").message == BODY
    send(jobs, transitions, "f1", "wamid.f1b", gen=2)  # begin says GO: the ledger let it through
    job = jobs.get("f1")
    assert (job.state, job.wamid, job.receipt) == (JobState.SENT, "wamid.f1b", None)
    # ...exactly once more: a second dispatch finds it sent.
    verdict = transitions.begin(
        Execution("f1", 2, "x"), now=time.time(), lease_s=5, probe_interval_s=5, rate=RATE
    ).verdict
    assert verdict is Verdict.STALE
    metrics = http.get("/metrics").text
    assert 'msgworker_delivery_failures_total{account="default",code="WA_131026"}' in metrics
    log = service.log.read_text()
    assert PHONE not in log
    assert "90532*****67" in log


def test_unmatched_statuses_are_kept_for_at_most_10000_wamids(
    http, jobs, redis_client, transitions
):
    """20,000 failed statuses for random 256-character wamids: the latest 10,000 are kept, in
    10,001 keys at most; the 10,000 oldest are dropped and counted. A status that races its
    send, after the flood, is still applied when the send is recorded."""
    dropped = "msgworker_webhook_unmatched_dropped_total"
    before = metric(http, dropped)
    rng = random.Random(12)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    wamids = ["".join(rng.choices(alphabet, k=256)) for _ in range(20_000)]
    for start in range(0, len(wamids), 1000):
        batch = [status(w, "failed", T0, code=131026) for w in wamids[start : start + 1000]]
        assert post(http, webhook(*batch)).status_code == 200
    early = list(redis_client.scan_iter(match="*:early", count=1000))
    assert len(early) == 10_000
    assert redis_client.dbsize() <= 10_001
    kept = {KEYS.early_statuses(w) for w in wamids[10_000:]}
    assert set(early) == kept  # the newest
    assert metric(http, dropped) == before + 10_000
    assert post(http, webhook(status("wamid.race", "delivered", T0))).status_code == 200
    send(jobs, transitions, "r1", "wamid.race")
    assert jobs.get("r1").receipt.status == "delivered"
    assert not redis_client.exists(KEYS.early_statuses("wamid.race"))
    assert redis_client.zscore(KEYS.early_arrivals, "wamid.race") is None


def metric(http, sample):
    """The value of one sample of /metrics (0 when absent)."""
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rpartition(" ")[2])
    return 0.0


def test_failed_after_delivered_is_out_of_order_and_parks_nothing(
    http, jobs, redis_client, transitions
):
    """delivered, then failed 131026 (forged or replayed): ignored and counted out_of_order; the
    job stays sent and delivered, with its payload, and no dead letter is made."""
    send(jobs, transitions, "d1", "wamid.d1")
    failures = 'msgworker_delivery_failures_total{account="default",code="WA_131026"}'
    out_of_order = 'msgworker_webhook_requests_total{result="out_of_order"}'
    before = (metric(http, failures), metric(http, out_of_order))
    assert post(http, webhook(status("wamid.d1", "delivered", T0))).status_code == 200
    assert post(http, webhook(status("wamid.d1", "failed", T0 + 1, code=131026))).status_code == 200
    job = jobs.get("d1")
    assert (job.state, job.receipt.status, job.message) == (JobState.SENT, "delivered", BODY)
    assert [e["event"] for e in job.history][-1] == "delivered"
    assert DeadLetters(redis_client, KEYS, retention_s=3600).counts() == {}
    assert (metric(http, failures), metric(http, out_of_order)) == (before[0], before[1] + 1)


def scheduled(redis_client):
    """Every member of the default account's lanes."""
    return {m for lane in LANES for m in redis_client.zrange(KEYS.due("default", lane), 0, -1)}


def failed_then_delivered(http, jobs, transitions, job_id):
    """A job parked by a `failed` that came first, then delivered after all."""
    send(jobs, transitions, job_id, f"wamid.{job_id}")
    post(http, webhook(status(f"wamid.{job_id}", "failed", T0, code=131026)))
    assert jobs.get(job_id).state is JobState.PARKED
    assert post(http, webhook(status(f"wamid.{job_id}", "delivered", T0 + 1))).status_code == 200
    job = jobs.get(job_id)
    assert (job.state, job.receipt.status) == (JobState.PARKED, "delivered")


def test_the_cli_never_replays_a_job_whatsapp_delivered(
    http, jobs, transitions, redis_client, redis_url
):
    """failed, then delivered: `dlq replay` skips it as already delivered and settles it sent;
    nothing is scheduled, the dead letter is gone."""
    failed_then_delivered(http, jobs, transitions, "c1")
    due = scheduled(redis_client)
    code, out, err = run(redis_url, "dlq", "replay", "--all", "--json", "--rate", "50")
    assert code == 0, err
    assert json.loads(out) == {
        "replayed": 0,
        "skipped_already_sent": 0,
        "skipped_delivered": 1,
        "skipped_expired": 0,
        "skipped_opted_out": 0,
        "missing": 0,
    }
    job = jobs.get("c1")
    assert (job.state, job.wamid) == (JobState.SENT, "wamid.c1")
    assert redis_client.get(KEYS.ledger("default", "c1")) == "wamid.c1"
    assert scheduled(redis_client) == due
    assert DeadLetters(redis_client, KEYS, retention_s=3600).counts() == {}


def test_the_console_replay_skips_jobs_whatsapp_delivered(http, jobs, redis_client, transitions):
    """The console's replay: a job delivered after its failed, and one parked by a failed that
    came after delivered (as older versions did), are skipped and counted, never scheduled."""
    failed_then_delivered(http, jobs, transitions, "k1")
    send(jobs, transitions, "k2", "wamid.k2")
    post(http, webhook(status("wamid.k2", "failed", T0, code=131026)))
    # What an older version left: delivered in the history, then parked by a later failed.
    failed = redis_client.lindex(KEYS.history("k2"), -1)
    redis_client.linsert(KEYS.history("k2"), "BEFORE", failed, history_event(T0, "delivered"))
    dead_letters = DeadLetters(redis_client, KEYS, retention_s=3600)
    replays = Replays(redis_client, KEYS, dead_letters)
    due = scheduled(redis_client)
    run_id = replays.start(["k1", "k2"], rate_per_s=50, what="WA_131026")
    wait_for(lambda: replays.get(run_id).state == "done", what="the replay to finish")
    progress = replays.get(run_id)
    assert (progress.replayed, progress.delivered, progress.done) == (0, 2, 2)
    assert {jobs.get(i).state for i in ("k1", "k2")} == {JobState.SENT}
    assert scheduled(redis_client) == due


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong_secret_0123456789"}, {"Authorization": SECRET}],
)
def test_a_wrong_or_missing_secret_is_401_and_changes_nothing(
    http, jobs, redis_client, headers, transitions
):
    """No valid Bearer secret: 401, and Redis is exactly as before."""
    send(jobs, transitions, "a1", "wamid.a1")
    before = snapshot(redis_client)
    assert post(http, webhook(status("wamid.a1", "read")), headers=headers).status_code == 401
    assert snapshot(redis_client) == before


def test_the_endpoint_is_off_without_a_secret(redis_url, tmp_path):
    """Without WEBHOOK_SECRET the path is 404."""
    server = Service(tmp_path, broker_url=redis_url).start()
    try:
        answer = httpx.post(f"{server.url}/webhooks/gateway", json=webhook(), headers=AUTH)
        assert answer.status_code == 404
    finally:
        server.stop()


GARBAGE = [
    b"",
    b"not json",
    b"\xff\xfe",
    b"[1,2,3]",
    b'"string"',
    b"NaN",
    b"[" * 100_000,
    json.dumps({"entry": "x"}).encode(),
    json.dumps({"entry": [{"changes": [{"value": []}]}]}).encode(),
    json.dumps(webhook({"id": "wamid.g", "status": "read", "timestamp": 5})).encode(),
    json.dumps(webhook({"id": "", "status": "read", "timestamp": str(T0)})).encode(),
    json.dumps(webhook({"id": "w x", "status": "read", "timestamp": str(T0)})).encode(),
    json.dumps(webhook({**status("wamid.g", "failed"), "errors": [{"code": "131026"}]})).encode(),
    json.dumps(webhook({**status("wamid.g", "failed"), "errors": [{"code": True}]})).encode(),
    json.dumps(webhook({**status("wamid.g", "read"), "recipient_id": "abc"})).encode(),
]


def test_garbage_is_400_or_413_never_500_and_changes_nothing(http, jobs, redis_client, transitions):
    """Hand-picked and random bodies: 400 or 413, nothing written."""
    send(jobs, transitions, "g1", "wamid.g")
    before = snapshot(redis_client)
    rng = random.Random(11)
    bodies = [*GARBAGE, b"x" * (1024 * 1024 + 1)]
    bodies += [rng.randbytes(rng.randint(1, 300)) for _ in range(150)]
    for body in bodies:
        answer = http.post("/webhooks/gateway", content=body, headers=AUTH)
        assert answer.status_code in (400, 413), (body[:80], answer.status_code)
    assert snapshot(redis_client) == before


def test_other_events_are_acknowledged_and_ignored(http, jobs, redis_client, transitions):
    """Inbound messages, unknown status kinds, empty bodies: 200 and no change."""
    send(jobs, transitions, "o1", "wamid.o1")
    before = snapshot(redis_client)
    inbound = {"entry": [{"changes": [{"value": {"messages": [{"from": PHONE, "id": "x"}]}}]}]}
    for body in (inbound, {}, webhook({"id": "wamid.o1", "status": "deleted"})):
        assert post(http, body).status_code == 200
    assert snapshot(redis_client) == before


def test_the_secret_is_in_no_log_and_no_metric(http, jobs, service, transitions):
    """Requests with the secret, right and wrong: neither the log nor /metrics shows it."""
    send(jobs, transitions, "x1", "wamid.x1")
    post(http, webhook(status("wamid.x1", "delivered")))
    post(http, webhook(), headers={"Authorization": f"Bearer {SECRET}x"})
    http.post("/webhooks/gateway", content=b"{", headers=AUTH)
    assert SECRET not in http.get("/metrics").text
    assert SECRET[:12] not in service.log.read_text()


def test_an_unmatched_status_is_kept_sixty_seconds_then_dropped(http, redis_client):
    """A status for a wamid no job knows: its record expires 60 s after it came, and the index
    of such arrivals forgets what is older than that when the next one comes."""
    assert post(http, webhook(status("wamid.early1", "delivered", T0))).status_code == 200
    assert 55_000 < redis_client.pttl(KEYS.early_statuses("wamid.early1")) <= 60_000
    stale = int((time.time() - 61) * 1000)
    redis_client.zadd(KEYS.early_arrivals, {"wamid.gone": stale})
    assert post(http, webhook(status("wamid.early2", "delivered", T0))).status_code == 200
    assert redis_client.zscore(KEYS.early_arrivals, "wamid.gone") is None
    assert redis_client.zscore(KEYS.early_arrivals, "wamid.early2") is not None


def test_redis_down_is_a_503_with_retry_after_so_the_gateway_sends_again(own_redis, tmp_path):
    """Redis not answering: 503 with Retry-After (the Gateway retries), never a 200 that would
    lose the status, nor a 500."""
    server = Service(tmp_path, broker_url=own_redis.url, webhook_secret=SECRET).start()
    try:
        own_redis.stop()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            answer = post(client, webhook(status("wamid.down", "delivered", T0)))
        assert answer.status_code == 503, answer.text
        assert int(answer.headers["Retry-After"]) > 0
    finally:
        server.stop()
