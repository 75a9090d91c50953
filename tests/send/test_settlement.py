"""Settlement records a claimed job's decision: each outcome is one script on a real private Redis,
and an execution that no longer owns the job writes nothing (but a late success's wamid)."""

from __future__ import annotations

import pytest

from tests.support.jobs import take
from tests.support.messages import text
from worker.errors import GatewayRejected
from worker.observe.incidents import Alert, AlertKind, AlertStatus, Incidents
from worker.outcome import Outcome, RateLimitHeaders
from worker.send.routing import Action, Decision, ParkReason
from worker.send.settlement import Answer, Settlement
from worker.store.claims import Execution, Verdict
from worker.store.ratelimit import RateLimit
from worker.store.records import Job
from worker.store.schedule import count_scheduled
from worker.store.states import JobState

NOW = 1_900_000_000.0
HOLDER = "execution-1"


class Alerts:
    """A notifier that keeps the alerts it is given."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def notify(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def close(self, timeout_s: float = 5.0) -> None:
        pass


@pytest.fixture
def alerts() -> Alerts:
    return Alerts()


@pytest.fixture
def settlement(runtime, alerts) -> Settlement:
    return Settlement(
        runtime.transitions, Incidents(runtime.redis, runtime.keys, alerts), runtime.meter
    )


def claimed(runtime, n: int = 1, *, holder: str = HOLDER) -> tuple[Execution, Job]:
    """A job enqueued and claimed by ``holder``, as a delivery would before calling."""
    job_id = runtime.producer.enqueue(text(n))
    execution = Execution(job_id, take(runtime, job_id), holder=holder)
    claim = runtime.transitions.begin(
        execution,
        now=NOW,
        lease_s=30.0,
        probe_interval_s=30.0,
        rate=RateLimit(per_sec=1000, per_min=100_000),
    )
    assert claim.verdict is Verdict.GO
    return execution, claim.job


def rejected(code: str, status: int, **fields) -> Answer:
    error = GatewayRejected(code=code, status=status, description=f"{code} said no", **fields)
    return Answer(error.outcome, RateLimitHeaders(), error=error)


SENT = Answer(Outcome.ok(), RateLimitHeaders(), wamid="wamid.1")


def test_sent_records_the_wamid_and_the_ledger(runtime, settlement):
    """A success: the job is sent with its wamid, the key in the ledger, nothing left pending."""
    execution, job = claimed(runtime)
    settlement.record(execution, job, SENT, Decision(Action.SENT), calls=1, now=NOW + 1)
    stored = runtime.jobs.get(job.id)
    assert (stored.state, stored.wamid) == (JobState.SENT, "wamid.1")
    assert runtime.redis.get(runtime.keys.ledger(job.account, job.key)) == "wamid.1"
    assert (
        count_scheduled(runtime.redis, runtime.keys)
        == runtime.redis.zcard(runtime.keys.leases)
        == 0
    )


def test_rescheduled_waits_its_delay_and_cools_the_account_down(runtime, settlement):
    """RATE_001: back on the schedule after the decision's delay, no attempt used, and the
    account cooling down for the Gateway's retry_after."""
    execution, job = claimed(runtime)
    answer = rejected("RATE_001", 429, retry_after_s=30.0)
    decision = Decision(Action.RESCHEDULE, delay_s=5.0)
    settlement.record(execution, job, answer, decision, calls=1, now=NOW)
    stored = runtime.jobs.get(job.id)
    assert (stored.state, stored.reschedules, stored.attempts) == (JobState.SCHEDULED, 1, 0)
    assert stored.due_at == pytest.approx(NOW + 5.0)
    assert runtime.switches.cooldown_until(job.account) == pytest.approx(NOW + 30.0)


def test_retried_backs_off_and_counts_the_attempt_without_a_cooldown(runtime, settlement):
    """A backoff: the job due after the delay, one attempt counted, no cooldown for the account."""
    execution, job = claimed(runtime)
    decision = Decision(Action.BACKOFF, delay_s=4.0)
    settlement.record(execution, job, rejected("HTTP_503", 503), decision, calls=1, now=NOW)
    stored = runtime.jobs.get(job.id)
    assert (stored.state, stored.attempts, stored.last_code) == (JobState.SCHEDULED, 1, "HTTP_503")
    assert stored.due_at == pytest.approx(NOW + 4.0)
    assert runtime.switches.cooldown_until(job.account) is None


def test_halted_holds_the_job_and_alerts_once_per_halt(runtime, settlement, alerts):
    """AUTH_001 for two claimed jobs: both held, the account halted with the code and the Gateway's
    description, and one halt alert between them."""
    both = [claimed(runtime, n, holder=f"execution-{n}") for n in range(2)]
    for execution, job in both:
        answer = rejected("AUTH_001", 401)
        settlement.record(execution, job, answer, Decision(Action.HALT), calls=1, now=NOW)
        assert runtime.jobs.get(job.id).state is JobState.HELD
    halt = runtime.switches.halted(job.account)
    assert (halt.code, halt.reason) == ("AUTH_001", "AUTH_001 said no")
    assert runtime.switches.held_count(job.account) == 2
    assert [(a.kind, a.status, a.code) for a in alerts.alerts] == [
        (AlertKind.HALT, AlertStatus.FIRING, "AUTH_001")
    ]


def test_parked_writes_the_dead_letter_with_the_calls_made(runtime, settlement, alerts):
    """A permanent rejection: the dead letter carries the code, reason, description, params and
    the calls made; no breaker and no alert."""
    execution, job = claimed(runtime)
    answer = rejected("MSG_002", 400, params={"field": "to"})
    decision = Decision.park(ParkReason.PERMANENT)
    settlement.record(execution, job, answer, decision, calls=3, now=NOW)
    assert runtime.jobs.get(job.id).state is JobState.PARKED
    letter = runtime.dead_letters.get(job.id)
    assert (letter.code, letter.reason, letter.attempts) == ("MSG_002", "permanent", 3)
    assert (letter.description, letter.params) == ("MSG_002 said no", {"field": "to"})
    assert runtime.switches.breaker(job.account) is None
    assert alerts.alerts == []


def test_a_billing_park_opens_the_breaker_and_a_later_success_closes_it(
    runtime, settlement, alerts
):
    """BILL_001 parked: the breaker opens with a billing alert; the probe's success closes the
    breaker and resolves the alert."""
    execution, job = claimed(runtime, 1, holder="first")
    decision = Decision.park(ParkReason.BILLING)
    settlement.record(execution, job, rejected("BILL_001", 402), decision, calls=1, now=NOW)
    assert runtime.switches.breaker(job.account) is not None
    execution, job = claimed(runtime, 2, holder="second")  # the breaker's probe
    settlement.record(execution, job, SENT, Decision(Action.SENT), calls=1, now=NOW + 1)
    assert runtime.switches.breaker(job.account) is None
    assert [(a.kind, a.status) for a in alerts.alerts] == [
        (AlertKind.BILLING, AlertStatus.FIRING),
        (AlertKind.BILLING, AlertStatus.RESOLVED),
    ]


def test_a_retries_exhausted_park_is_counted_for_its_incident(runtime, settlement):
    """Parked after exhausting its retries: one entry in the account's exhausted window."""
    execution, job = claimed(runtime)
    decision = Decision.park(ParkReason.RETRIES_EXHAUSTED)
    settlement.record(execution, job, rejected("HTTP_503", 503), decision, calls=8, now=NOW)
    assert runtime.redis.zcard(runtime.keys.exhausted(job.account)) == 1


STALE_CASES = {
    "rescheduled": (rejected("RATE_001", 429, retry_after_s=9.0), Decision(Action.RESCHEDULE, 9.0)),
    "retried": (rejected("HTTP_503", 503), Decision(Action.BACKOFF, delay_s=4.0)),
    "halted": (rejected("AUTH_001", 401), Decision(Action.HALT)),
    "parked": (rejected("BILL_001", 402), Decision.park(ParkReason.BILLING)),
}


@pytest.mark.parametrize("case", STALE_CASES)
def test_an_execution_that_lost_the_job_records_nothing(runtime, settlement, alerts, case):
    """Another execution holds the claim: no state change, schedule entry, switch, dead letter
    or alert comes from the one that lost it."""
    execution, job = claimed(runtime)
    before = runtime.jobs.get(job.id)
    schedule = runtime.redis.zrange(runtime.keys.due(job.account, "normal"), 0, -1, withscores=True)
    answer, decision = STALE_CASES[case]
    stale = Execution(execution.job_id, execution.gen, holder="someone-else")
    settlement.record(stale, job, answer, decision, calls=1, now=NOW)
    after = runtime.jobs.get(job.id)
    assert (after.state, after.gen, after.attempts) == (before.state, before.gen, before.attempts)
    assert (
        runtime.redis.zrange(runtime.keys.due(job.account, "normal"), 0, -1, withscores=True)
        == schedule
    )
    assert runtime.switches.cooldown_until(job.account) is None
    assert runtime.switches.halted(job.account) is None
    assert runtime.switches.breaker(job.account) is None
    assert runtime.dead_letters.get(job.id) is None
    assert alerts.alerts == []


def test_a_late_success_is_recorded_even_without_the_claim(runtime, settlement):
    """The message went out: a success is recorded (wamid and ledger) whoever holds the job."""
    execution, job = claimed(runtime)
    stale = Execution(execution.job_id, execution.gen, holder="someone-else")
    settlement.record(stale, job, SENT, Decision(Action.SENT), calls=1, now=NOW)
    assert runtime.jobs.get(job.id).wamid == "wamid.1"
    assert runtime.redis.get(runtime.keys.ledger(job.account, job.key)) == "wamid.1"
