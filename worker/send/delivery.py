"""deliver(): claim and reserve a slot → wait → send → decide → record. The task is a thin adapter.

Redis round trips per send: ``begin`` (checks, claim, rate-limit slot) and one settlement script
(which also learns from the answer's rate-limit headers); after a success, one EXISTS to see
whether a retries-exhausted incident can resolve; and, only for a call that waited for its slot,
a fresh look at the halt, cooldown and billing breaker before the call.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from worker.errors import GatewayError
from worker.logs import get_logger
from worker.outcome import WORKER_LOST, Outcome, RateLimitHeaders
from worker.send.gateway import GatewayClient
from worker.send.routing import Action, Attempt, Decision, ParkReason, Policy, decide
from worker.send.settlement import Answer, Settlement
from worker.store.jobs import Claim, Execution, Job, JobStore, Verdict
from worker.store.ratelimit import RateLimit

log = get_logger(__name__)

# The code a job of an account the deployment no longer knows is held with.
ACCOUNT_UNKNOWN = "ACCOUNT_UNKNOWN"


class Result(StrEnum):
    """What one delivery did; also the ``outcome`` label of ``msgworker_jobs_total``."""

    SENT = "sent"
    RESCHEDULED = "rescheduled"
    RETRIED = "retried"
    PARKED = "parked"
    HALTED = "halted"
    DUPLICATE = "duplicate"
    WAITING = "waiting"
    DROPPED = "dropped"


# What a delivery did, by the action the settlement recorded.
RESULTS = {
    Action.SENT: Result.SENT,
    Action.RESCHEDULE: Result.RESCHEDULED,
    Action.BACKOFF: Result.RETRIED,
    Action.HALT: Result.HALTED,
    Action.PARK: Result.PARKED,
}


@dataclass(frozen=True)
class Timing:
    """How long claims last, how often the billing breaker probes, how long a wait for a probe."""

    lease_s: float
    probe_interval_s: float = 30.0
    breaker_wait_s: float = 1.0


class Meter(Protocol):
    """Where deliveries report what they saw (``worker.observe.metrics.Meter`` in a worker)."""

    def answered(self, account: str, outcome: Outcome, seconds: float) -> None: ...
    def finished(self, account: str, result: str) -> None: ...
    def waited(self, account: str, seconds: float) -> None: ...
    def ignored(self, value: str) -> None: ...


class Delivery:
    """Delivers one dispatched job; every decision is the routing table's."""

    def __init__(  # noqa: PLR0913 - the components deliver() coordinates
        self,
        jobs: JobStore,
        gateways: Mapping[str, GatewayClient],
        policy: Policy,
        rate: RateLimit,
        settlement: Settlement,
        timing: Timing,
        meter: Meter,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._jobs = jobs
        self._gateways = gateways
        self._policy = policy
        self._rate = rate
        self._settlement = settlement
        self._timing = timing
        self._meter = meter
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def deliver(self, job_id: str, gen: int) -> Result:
        """Deliver one dispatch of a job; returns what became of it."""
        execution = Execution(job_id, gen, holder=uuid.uuid4().hex)
        claim = self._jobs.begin(
            execution,
            now=self._clock(),
            lease_s=self._timing.lease_s,
            probe_interval_s=self._timing.probe_interval_s,
            rate=self._rate,
        )
        result = self._deliver(execution, claim)
        if claim.job is not None:  # stale and busy dispatches read no job and count nothing
            self._meter.finished(claim.job.account, result)
        return result

    def _deliver(self, execution: Execution, claim: Claim) -> Result:
        verdict, job = claim.verdict, claim.job
        if claim.wait_s > 0 and job is not None:
            self._meter.waited(job.account, claim.wait_s)
        if verdict in {Verdict.STALE, Verdict.BUSY}:
            log.debug("job.dispatch_dropped", job_id=execution.job_id, verdict=verdict)
            return Result.DROPPED
        if verdict is Verdict.DUPLICATE:
            log.info("job.duplicate", job_id=execution.job_id, wamid=claim.detail)
            return Result.DUPLICATE
        if verdict is Verdict.HELD:
            log.info("job.held", job_id=execution.job_id)
            return Result.HALTED
        if verdict is Verdict.DEFERRED:
            return Result.WAITING
        if job is None:  # every other verdict returns the job (stale and busy are dropped above)
            return Result.DROPPED
        if verdict is Verdict.GO and claim.wait_s > 0:
            return self._after_wait(execution, job, claim.wait_s)
        return self._claimed(execution, job, verdict)

    def _after_wait(self, execution: Execution, job: Job, wait_s: float) -> Result:
        """Sleep until the slot, then look again: a halt, cooldown or breaker may have come."""
        self._sleep(wait_s)
        verdict = self._jobs.recheck(
            execution, job, now=self._clock(), probe_interval_s=self._timing.probe_interval_s
        ).verdict
        if verdict is Verdict.STALE:
            return Result.DROPPED
        if verdict is Verdict.HELD:
            log.info("job.held", job_id=execution.job_id)
            return Result.HALTED
        if verdict is Verdict.DEFERRED:
            return Result.WAITING
        return self._claimed(execution, job, verdict)

    def _claimed(self, execution: Execution, job: Job, verdict: Verdict) -> Result:
        """The job is ours: wait for the probe, park, or call the Gateway."""
        if verdict is Verdict.WAIT:
            self._settlement.breaker_wait(
                execution, delay_s=self._timing.breaker_wait_s, now=self._clock()
            )
            return Result.WAITING
        if verdict is Verdict.BREAKER:
            answer = Answer(Outcome(code="BILL_001"), RateLimitHeaders())
            return self._settle(execution, job, answer, Decision.park(ParkReason.BILLING))
        if verdict is Verdict.EXPIRED:
            return self._settle(execution, job, Answer(Outcome.expired(), RateLimitHeaders()))
        if verdict is Verdict.LOST:
            # The last execution died during its call: the Gateway may have sent it.
            lost = Answer(Outcome(code=WORKER_LOST, ambiguous=True), RateLimitHeaders())
            return self._settle(execution, job, lost)
        gateway = self._gateways.get(job.account)
        if gateway is None:  # no longer configured: its jobs wait behind a halt until it is again
            unknown = Answer(Outcome(code=ACCOUNT_UNKNOWN), RateLimitHeaders())
            return self._settle(execution, job, unknown, Decision(Action.HALT))
        return self._settle(execution, job, self._call(job, gateway), called=True)

    def _call(self, job: Job, gateway: GatewayClient) -> Answer:
        started = time.perf_counter()
        rate = self._rate.for_account(job.account)
        try:
            sent = gateway.send(job.message)
        except GatewayError as error:
            answer = Answer(error.outcome, rate.in_force(error.rate_limit), error=error)
        else:
            answer = Answer(sent.outcome, rate.in_force(sent.rate_limit), wamid=sent.wamid)
        self._meter.answered(job.account, answer.outcome, time.perf_counter() - started)
        for value in answer.headers.ignored:
            log.warning("gateway.value_ignored", value=value, job_id=job.id)
            self._meter.ignored(value)
        return answer

    def _settle(
        self,
        execution: Execution,
        job: Job,
        answer: Answer,
        decision: Decision | None = None,
        *,
        called: bool = False,
    ) -> Result:
        outcome = answer.outcome
        calls = job.attempts + (1 if called else 0)
        decision = decision or decide(
            outcome, Attempt(calls=calls, reschedules=job.reschedules), self._policy, rng=self._rng
        )
        self._settlement.record(execution, job, answer, decision, calls=calls, now=self._clock())
        return RESULTS[decision.action]
