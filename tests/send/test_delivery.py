"""Delivery drives one dispatch: claim, call, decide, record. Built here by hand with its clock,
sleep and random source injected, on a real private Redis, with the Gateway faked at the network
edge (httpx.MockTransport): each test is one answer and what it leaves in Redis."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable

import httpx
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.support.clock import Clock
from tests.support.hostile import mock_gateway
from tests.support.messages import text
from tests.support.processes import wait_for
from tests.support.receipts import apply_statuses
from worker.http.console.chartdata import bucket_of, fold, read_buckets
from worker.outcome import Result
from worker.send.arrivals import REFUSED_MS, Arrivals
from worker.send.delivery import UNCHECKED_WAIT_S, Delivery
from worker.send.gateway import GatewayClient
from worker.send.reconcile import Reconciliation
from worker.send.routing import Policy
from worker.send.settlement import Settlement
from worker.store.connect import connect_listener
from worker.store.ratelimit import RateLimit
from worker.store.receipts import Applied, ReceiptAction, ReceiptStatus, StatusUpdate
from worker.store.states import JobState
from worker.store.watch import SwitchWatch

API_KEY = "sk_delivery_test"
SEED = 7


class Meter:
    """Records what a delivery reports."""

    def __init__(self) -> None:
        self.results: list[str] = []
        self.codes: list[str] = []
        self.accounts: set[str] = set()
        self.statuses: list[tuple[str, str, str]] = []
        self.pair_waits: list[str] = []
        self.arrivals: list[float] = []

    def answered(self, account: str, outcome, _seconds: float) -> None:
        self.accounts.add(account)
        self.codes.append(outcome.code)

    def arrived(self, seconds: float) -> None:
        self.arrivals.append(seconds)

    def finished(self, account: str, result: str) -> None:
        self.accounts.add(account)
        self.results.append(result)

    def waited(self, account: str, _seconds: float) -> None:
        self.accounts.add(account)

    def pair_waited(self, account: str) -> None:
        self.pair_waits.append(account)

    def ignored(self, _value: str) -> None:
        pass

    def delivery_status(self, account: str, status: str, code: str) -> None:
        self.statuses.append((account, status, code))


def gateway_answering(
    respond: Callable[[httpx.Request], httpx.Response], calls: list
) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content))
        return respond(request)

    return mock_gateway(handler)


def error(status: int, code: str, **params) -> Callable[[httpx.Request], httpx.Response]:
    body = {"isSuccess": False, "errors": {"code": code, "description": code, "params": params}}
    return lambda _request: httpx.Response(status, json=body)


def success(wamid: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _request: httpx.Response(
        200, json={"isSuccess": True, "data": {"messages": [{"id": wamid}]}}
    )


@pytest.fixture
def clock():
    return Clock(1_900_000_000.0)


@pytest.fixture
def deliver(runtime, clock):
    """``deliver(respond)``: a Delivery whose Gateway answers with ``respond``; it returns
    (delivery, the request bodies the Gateway saw, the meter)."""
    clients: list[httpx.Client] = []

    def build(
        respond,
        *,
        switches=None,
        stopping=lambda: False,
        reconciliation=None,
        rate=RateLimit(per_sec=1000, per_min=100_000),  # noqa: B008 - frozen
        replicated=lambda *_: None,
        arrivals=None,
    ):
        calls: list = []
        http = gateway_answering(respond, calls)
        clients.append(http)
        meter = Meter()
        delivery = Delivery(
            runtime.transitions,
            {"default": GatewayClient(http, base_url="http://gateway.test", api_key=API_KEY)},
            Policy(
                table=runtime.routing_table, max_attempts=4, backoff_base_s=2.0, backoff_cap_s=60.0
            ),
            rate,
            Settlement(runtime.transitions, runtime.incidents, meter),
            runtime.timing,
            meter,
            clock=clock,
            sleep=clock.sleep,
            rng=random.Random(SEED),
            switches=switches,
            stopping=stopping,
            reconciliation=reconciliation,
            replicated=replicated,
            arrivals=arrivals,
        )
        return delivery, calls, meter

    yield build
    for http in clients:
        http.close()


def enqueue(runtime, n=1, **options) -> tuple[str, int]:
    job_id = runtime.producer.enqueue(text(n), **options)
    return job_id, runtime.jobs.get(job_id).gen


def test_a_success_is_recorded_as_sent_with_its_wamid(runtime, deliver):
    """200 with a message id: sent, the wamid on the job and in the ledger, one call made."""
    delivery, calls, meter = deliver(success("wamid.ok"))
    job_id, gen = enqueue(runtime)
    assert delivery.deliver(job_id, gen) is Result.SENT
    job = runtime.jobs.get(job_id)
    assert (job.state, job.wamid) == (JobState.SENT, "wamid.ok")
    assert runtime.redis.get(runtime.keys.ledger(job.account, job.key)) == "wamid.ok"
    assert len(calls) == 1
    assert meter.results == ["sent"]


def test_a_job_whose_pair_is_busy_waits_on_the_schedule_and_is_counted(runtime, deliver, clock):
    """Two jobs to one number in one group, paced: the first is sent, the second goes back on
    the schedule for the interval without a call, and the meter counts one pair wait (not a
    rate-limit wait)."""
    paced = RateLimit(per_sec=1000, per_min=100_000, pair_interval_s=6)
    delivery, calls, meter = deliver(success("wamid.pair"), rate=paced)
    first, second = enqueue(runtime, 1), enqueue(runtime, 2)
    assert delivery.deliver_many([first, second]) == [Result.SENT, Result.WAITING]
    assert len(calls) == 1
    assert meter.pair_waits == ["default"]
    job = runtime.jobs.get(second[0])
    assert (job.state, job.attempts) == (JobState.SCHEDULED, 0)
    assert job.due_at == pytest.approx(clock.now + 6)


def test_a_call_sent_late_takes_its_late_place_in_the_window(runtime, deliver, clock):
    """The call goes out 7 ms after its slot (the wait for the replicas took that long): its
    settlement moves the call's entry in the account's window 7 ms on (8 when its round trip
    was slower than the quickest by more than a hair), where it reached the Gateway."""

    def slow_replicas(*_) -> None:
        clock.now += 0.007

    delivery, _, meter = deliver(success("wamid.late"), replicated=slow_replicas)
    job_id, gen = enqueue(runtime)
    began = clock.now
    assert delivery.deliver(job_id, gen) is Result.SENT
    entry = runtime.redis.hget(runtime.keys.job(job_id), "slot")
    score = runtime.redis.zscore(runtime.keys.window("default", "sec"), entry)
    assert 7 <= score - int(began * 1000) <= 8
    assert meter.arrivals == [(score - int(began * 1000)) / 1000]


def test_a_429_widens_the_margin_the_next_begins_keep(runtime, deliver):
    """RATE_001 answered: the process's margin (what its begins keep) is REFUSED_MS wider."""
    arrivals = Arrivals()
    delivery, _, _ = deliver(error(429, "RATE_001", retry_after=1), arrivals=arrivals)
    before = arrivals.ms
    assert delivery.deliver(*enqueue(runtime)) is Result.RESCHEDULED
    assert arrivals.ms == before + REFUSED_MS


def test_a_begin_keeps_the_margin_its_process_measured(runtime, deliver):
    """With a 3 ms margin measured, two jobs of a group at 10/s get slots 100.3 ms apart (the
    Gateway's second and 3 ms, over 10), not the start margin's 104 ms."""
    arrivals = Arrivals()
    arrivals.ms = 3
    rate = RateLimit(per_sec=10, per_min=10_000)
    delivery, _, _ = deliver(success("wamid.margin"), arrivals=arrivals, rate=rate)
    first, second = enqueue(runtime, 1), enqueue(runtime, 2)
    assert delivery.deliver_many([first, second]) == [Result.SENT, Result.SENT]
    reserved = [
        float(runtime.redis.hget(runtime.keys.job(job_id), "slot").rsplit("@", 1)[1])
        for job_id, _ in (first, second)
    ]
    assert reserved[1] - reserved[0] == pytest.approx(100.3, abs=0.1)


def test_rate_001_reschedules_the_job_and_cools_the_account_down(runtime, deliver, clock):
    """RATE_001 with retry_after 30: back on the schedule ~30 s on, no attempt used, the account
    cooling down for 30 s for every worker."""
    delivery, _, _ = deliver(error(429, "RATE_001", retry_after=30))
    job_id, gen = enqueue(runtime)
    assert delivery.deliver(job_id, gen) is Result.RESCHEDULED
    job = runtime.jobs.get(job_id)
    assert job.state is JobState.SCHEDULED
    assert (job.reschedules, job.attempts) == (1, 0)
    assert clock.now + 30 <= job.due_at <= clock.now + 33
    assert runtime.switches.cooldown_until(job.account) == pytest.approx(clock.now + 30)


def test_every_answer_settled_is_on_the_console_chart_by_code(runtime, deliver, clock):
    """A 502 (retried), a success and a 429 RATE_001 (rescheduled), settled in one 10-second
    bucket: folded, the chart's bucket says HTTP_502 1, OK 1, RATE_001 1 (the retried answers
    were on no chart before, as they leave no dead letter)."""
    answers = [
        lambda _request: httpx.Response(502, text="bad gateway"),
        success("wamid.chart"),
        error(429, "RATE_001", retry_after=30),
    ]
    for n, respond in enumerate(answers):
        delivery, _, _ = deliver(respond)
        delivery.deliver(*enqueue(runtime, n))
    start = bucket_of(clock.now)

    fold(runtime.redis, runtime.keys, start)

    bucket = read_buckets(runtime.redis, runtime.keys, now=start + 11)[-1]
    assert bucket.start == start
    assert bucket.answers == {"HTTP_502": 1, "OK": 1, "RATE_001": 1}


def test_statuses_that_came_before_the_send_was_recorded_are_counted_once(
    runtime, deliver, redis_url
):
    """A webhook's sent and failed (WA_131026) for a wamid no job has yet: serve keeps them
    unmatched, uncounted. The send recorded applies them and the worker counts each once; the
    same webhook again changes nothing, so serve does not count them either."""
    delivery, _, meter = deliver(success("wamid.early"))
    failed = StatusUpdate(
        "wamid.early",
        ReceiptStatus.FAILED,
        2.0,
        error={"code": 131026},
        code="WA_131026",
        action=ReceiptAction.DROP,
    )
    webhook = (StatusUpdate("wamid.early", ReceiptStatus.SENT, 1.0), failed)
    unmatched = apply_statuses(redis_url, runtime.keys, *webhook)
    assert [r.applied for r in unmatched.results] == [Applied.UNMATCHED] * 2

    assert delivery.deliver(*enqueue(runtime)) is Result.SENT

    assert meter.statuses == [("default", "sent", ""), ("default", "failed", "WA_131026")]
    again = apply_statuses(redis_url, runtime.keys, *webhook)
    assert [r.applied for r in again.results] == [Applied.STALE] * 2


def test_bill_001_parks_the_job_and_opens_the_billing_breaker(runtime, deliver):
    """BILL_001: a dead letter with the billing reason, and the account's breaker open."""
    delivery, _, _ = deliver(error(402, "BILL_001"))
    job_id, gen = enqueue(runtime)
    assert delivery.deliver(job_id, gen) is Result.PARKED
    assert runtime.jobs.get(job_id).state is JobState.PARKED
    letter = runtime.dead_letters.get(job_id)
    assert (letter.code, letter.reason, letter.attempts) == ("BILL_001", "billing", 1)
    assert runtime.switches.breaker(letter.account) is not None


def test_auth_001_halts_the_account_and_holds_the_job(runtime, deliver):
    """AUTH_001: the account halted with the code, the job held with its attempt not counted."""
    delivery, _, _ = deliver(error(401, "AUTH_001"))
    job_id, gen = enqueue(runtime)
    assert delivery.deliver(job_id, gen) is Result.HELD
    job = runtime.jobs.get(job_id)
    assert job.state is JobState.HELD
    assert runtime.switches.halted(job.account).code == "AUTH_001"
    assert runtime.dead_letters.get(job_id) is None


def test_a_5xx_backs_off_by_the_jittered_delay_the_random_source_gives(runtime, deliver, clock):
    """503: retried after full-jitter backoff for the first retry, drawn from the injected rng."""
    delivery, _, meter = deliver(lambda _request: httpx.Response(503, text="busy"))
    job_id, gen = enqueue(runtime)
    assert delivery.deliver(job_id, gen) is Result.RETRIED
    job = runtime.jobs.get(job_id)
    # The first retry's full jitter, drawn by hand: uniform in [0, min(cap, base·2^0)] = [0, 2 s].
    expected = random.Random(SEED).uniform(0.0, 2.0)
    assert job.attempts == 1
    assert job.due_at == pytest.approx(clock.now + expected)
    assert meter.results == ["retried"]


def test_a_timeout_after_the_request_left_is_ambiguous_and_backs_off(runtime, deliver):
    """The answer lost after the request was written: the shipped table retries (at least once)."""

    def lost(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    delivery, calls, meter = deliver(lost)
    job_id, gen = enqueue(runtime)
    assert delivery.deliver(job_id, gen) is Result.RETRIED
    assert len(calls) == 1
    assert runtime.jobs.get(job_id).state is JobState.SCHEDULED
    assert runtime.dead_letters.get(job_id) is None
    assert meter.results == ["retried"]
    assert meter.arrivals == []  # no answer: no arrival to chart (its deadline is not one)


def test_an_expired_job_is_parked_without_calling(runtime, deliver, clock):
    """Past its expiry when claimed: parked as expired, and the Gateway never called."""
    delivery, calls, _ = deliver(success("wamid.never"))
    job_id, gen = enqueue(runtime, ttl_s=60)
    clock.now = runtime.jobs.get(job_id).expires_at + 1
    assert delivery.deliver(job_id, gen) is Result.PARKED
    assert runtime.dead_letters.get(job_id).reason == "expired"
    assert calls == []


def test_a_key_already_sent_is_a_duplicate_and_never_called_again(runtime, deliver):
    """The ledger already holds the key (another execution sent it): sent with that wamid, no call."""
    delivery, calls, _ = deliver(success("wamid.second"))
    job_id, gen = enqueue(runtime)
    job = runtime.jobs.get(job_id)
    runtime.redis.set(runtime.keys.ledger(job.account, job.key), "wamid.first")
    assert delivery.deliver(job_id, gen) is Result.DUPLICATE
    assert calls == []
    job = runtime.jobs.get(job_id)
    assert (job.state, job.wamid) == (JobState.SENT, "wamid.first")


def script_calls(runtime) -> int:
    """Script calls Redis ran (a first call of a script Redis did not know yet fails, then runs)."""
    stats = runtime.redis.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)) - int(stats.get("failed_calls", 0))


def test_a_group_is_sent_with_one_script_call_per_job_plus_one(runtime, deliver, clock):
    """A broker message's four jobs: each sent once; the first begun on its own, each next one by
    the settlement of the send before it, in the same round trip (a call that waited for its
    slot more than a few milliseconds takes one more, its fresh look at the switches)."""
    delivery, calls, meter = deliver(success("wamid.group"))
    group = [enqueue(runtime, n) for n in range(4)]
    before = script_calls(runtime)
    assert delivery.deliver_many(group) == [Result.SENT] * 4
    rechecks = [wait for wait in clock.slept if wait > UNCHECKED_WAIT_S]
    assert script_calls(runtime) - before == 5 + len(rechecks)
    assert [runtime.jobs.get(job_id).state for job_id, _ in group] == [JobState.SENT] * 4
    assert len(calls) == 4
    assert meter.results == ["sent"] * 4


def test_another_clients_calls_reach_the_log_from_one_answer_an_interval(runtime, deliver):
    """The Gateway counts 40 calls more than this deployment made in the second: the first
    answer fills the log with them; answers within the interval are not compared (the
    other client's further 30 stay unseen); the first answer after it fills those in too."""
    answers = iter([40, 70, 70, 100])  # the other client's calls, as each answer counts them
    made = 0

    def respond(_request: httpx.Request) -> httpx.Response:
        nonlocal made
        made += 1
        remaining = 1000 - made - next(answers)
        headers = {"X-RateLimit-Sec-Limit": "1000", "X-RateLimit-Sec-Remaining": str(remaining)}
        body = {"isSuccess": True, "data": {"messages": [{"id": f"wamid.{made}"}]}}
        return httpx.Response(200, json=body, headers=headers)

    interval = Clock(0.0)
    delivery, _, _ = deliver(respond, reconciliation=Reconciliation(1.0, clock=interval))
    window = runtime.keys.window("default", "sec")

    def seen() -> int:
        return sum(1 for m in runtime.redis.zrange(window, 0, -1) if m.startswith("seen:"))

    job_id, gen = enqueue(runtime, 0)
    assert delivery.deliver(job_id, gen) is Result.SENT
    assert seen() == 40
    for n in (1, 2):
        job_id, gen = enqueue(runtime, n)
        assert delivery.deliver(job_id, gen) is Result.SENT
    assert seen() == 40
    interval.sleep(1.0)
    job_id, gen = enqueue(runtime, 3)
    assert delivery.deliver(job_id, gen) is Result.SENT
    assert seen() == 100


def test_a_429_is_held_against_the_log_within_the_interval(runtime, deliver):
    """A success fills in the other client's 40 calls; a 429 right after it, within the interval,
    says they made 30 more and used the window up: its counts are compared all the same."""
    made = 0

    def respond(_request: httpx.Request) -> httpx.Response:
        nonlocal made
        made += 1
        if made == 1:
            headers = {"X-RateLimit-Sec-Limit": "1000", "X-RateLimit-Sec-Remaining": "959"}
            body = {"isSuccess": True, "data": {"messages": [{"id": "wamid.1"}]}}
            return httpx.Response(200, json=body, headers=headers)
        headers = {"X-RateLimit-Sec-Limit": "1000", "X-RateLimit-Sec-Remaining": "928"}
        body = {"isSuccess": False, "errors": {"code": "RATE_001", "params": {"retry_after": 1}}}
        return httpx.Response(429, json=body, headers=headers)

    delivery, _, _ = deliver(respond, reconciliation=Reconciliation(1.0, clock=Clock(0.0)))
    window = runtime.keys.window("default", "sec")
    for n in (0, 1):
        job_id, gen = enqueue(runtime, n)
        delivery.deliver(job_id, gen)
    seen = [m for m in runtime.redis.zrange(window, 0, -1) if m.startswith("seen:")]
    assert len(seen) == 70


def test_a_shutdown_begins_no_more_jobs_of_a_group(runtime, deliver, clock):
    """The worker starts shutting down during a group's first call: that send is settled, the
    jobs behind it are not begun (no claim, no attempt) but handed back to the pump at once, and
    a later dispatch sends each once."""
    stopping = threading.Event()

    def respond(request: httpx.Request) -> httpx.Response:
        stopping.set()
        return success(f"wamid.{len(calls)}")(request)

    delivery, calls, _ = deliver(respond, stopping=stopping.is_set)
    group = [enqueue(runtime, n) for n in range(3)]
    leased_until = clock.now + 30  # as the pump leases a dispatch
    runtime.redis.zadd(runtime.keys.leases, {f"{i}|{g}": leased_until for i, g in group})
    assert delivery.deliver_many(group) == [Result.SENT]
    assert len(calls) == 1
    for job_id, gen in group[1:]:
        job = runtime.jobs.get(job_id)
        assert (job.state, job.attempts) == (JobState.QUEUED, 0)
        assert runtime.redis.exists(runtime.keys.claim(job.account, job.key)) == 0
        # Handed back: dispatched again by the next pump round, not when the lease would end.
        assert runtime.redis.zscore(runtime.keys.leases, f"{job_id}|{gen}") == clock.now
    later, later_calls, _ = deliver(success("wamid.later"))
    assert later.deliver_many(group) == [Result.DROPPED, Result.SENT, Result.SENT]
    assert len(calls) + len(later_calls) == 3


def test_a_group_goes_on_after_a_job_that_was_not_sent(runtime, deliver):
    """A stale dispatch and a parked job in the middle of a group: the jobs after them are begun
    on their own, and sent."""
    answers = iter([success("wamid.a"), error(400, "GW_001"), success("wamid.c")])

    def respond(request: httpx.Request) -> httpx.Response:
        return next(answers)(request)

    delivery, calls, _ = deliver(respond)
    first, parked, last = (enqueue(runtime, n) for n in range(3))
    stale = (first[0], first[1] + 5)
    assert delivery.deliver_many([first, stale, parked, last]) == [
        Result.SENT,
        Result.DROPPED,
        Result.PARKED,
        Result.SENT,
    ]
    assert runtime.jobs.get(last[0]).wamid == "wamid.c"
    assert runtime.dead_letters.get(parked[0]).code == "GW_001"
    assert len(calls) == 3


def test_a_job_held_by_a_halt_is_counted_under_its_account(runtime, deliver):
    """A dispatch of a halted account's job: halted, counted for that account, no call made."""
    delivery, calls, meter = deliver(success("wamid.never"))
    job_id, gen = enqueue(runtime)
    runtime.switches.halt("default", reason="test")
    assert delivery.deliver(job_id, gen) is Result.HELD
    assert calls == []
    assert (meter.results, meter.accounts) == (["halted"], {"default"})


def test_a_duplicate_dispatch_is_counted_under_its_account(runtime, deliver):
    """A second job with a sent key: duplicate, counted for its account, no second call."""
    delivery, calls, meter = deliver(success("wamid.once"))
    first, gen = enqueue(runtime, idempotency_key="k1")
    assert delivery.deliver(first, gen) is Result.SENT
    job = runtime.jobs.get(first)
    runtime.redis.hset(runtime.keys.job(first), mapping={"state": "queued", "wamid": ""})
    assert delivery.deliver(first, job.gen) is Result.DUPLICATE
    assert len(calls) == 1
    assert (meter.results, meter.accounts) == (["sent", "duplicate"], {"default"})


def test_a_job_begun_by_the_send_before_it_looks_again_when_its_call_comes_late(
    runtime, deliver, clock
):
    """The settlement of the first send begins the second job; a halt comes a second later,
    before the second job's call: it is held, not called (its call was not in flight yet)."""
    delivery, calls, meter = deliver(success("wamid.first"))
    group = [enqueue(runtime, n) for n in range(2)]
    count = meter.finished

    def halt_after_the_first(account: str, result: str) -> None:
        count(account, result)
        if len(meter.results) == 1:
            clock.now += 1.0
            runtime.switches.halt("default", reason="halted meanwhile")

    meter.finished = halt_after_the_first
    assert delivery.deliver_many(group) == [Result.SENT, Result.HELD]
    assert len(calls) == 1
    assert runtime.jobs.get(group[1][0]).state is JobState.HELD


def test_a_failing_incident_lookup_after_a_send_leaves_no_job_stranded(
    runtime, deliver, monkeypatch
):
    """Redis fails while a send's settlement looks at an open incident: the send is recorded
    and the job its settlement began is still called."""
    delivery, calls, _ = deliver(success("wamid.each"))
    runtime.redis.hset(runtime.keys.incident("retries_exhausted", "default"), "since", "1")

    def failing(*_args: object, **_kwargs: object) -> None:
        raise RedisConnectionError("lost the connection")

    monkeypatch.setattr(runtime.incidents, "resolve_quiet_exhausted", failing)
    group = [enqueue(runtime, n) for n in range(2)]
    assert delivery.deliver_many(group) == [Result.SENT, Result.SENT]
    assert len(calls) == 2


@pytest.fixture
def watch(runtime):
    """The switch watch, subscribed."""
    watch = SwitchWatch(connect_listener(runtime.settings.state_url), runtime.keys)
    wait_for(lambda: watch.token() is not None, what="the subscription")
    yield watch
    watch.stop()


def test_a_late_call_looks_again_only_when_a_switch_was_heard_meanwhile(
    runtime, deliver, clock, watch
):
    """Two groups of two whose second call comes a second after its begin: with nothing set
    meanwhile it goes out without a fresh look (one script call per job plus one); with a halt
    set meanwhile, heard by the watch, it looks, and is held."""
    delivery, calls, meter = deliver(success("wamid.late"), switches=watch)
    count = meter.finished
    halting = False

    def late_second(account: str, result: str) -> None:
        count(account, result)
        if len(meter.results) % 2 == 1:
            clock.now += 1.0
            if halting:
                before = watch.token()
                runtime.switches.halt("default", reason="halted meanwhile")
                wait_for(lambda: watch.changed(before), what="the halt heard")

    meter.finished = late_second
    quiet = [enqueue(runtime, n) for n in range(2)]
    before = script_calls(runtime)
    assert delivery.deliver_many(quiet) == [Result.SENT, Result.SENT]
    assert script_calls(runtime) - before == 3

    halting = True
    halted = [enqueue(runtime, n) for n in range(2, 4)]
    assert delivery.deliver_many(halted) == [Result.SENT, Result.HELD]
    assert len(calls) == 3
    assert runtime.jobs.get(halted[1][0]).state is JobState.HELD
