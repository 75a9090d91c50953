"""deliver(): claim → wait for the limiter → send → decide → record. The task is a thin adapter."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from worker.errors import ClaimLost, GatewayError
from worker.gateway import GatewayClient
from worker.jobs import Execution, Job, JobStore, Verdict
from worker.logs import get_logger
from worker.outcome import WORKER_LOST, Outcome, RateLimitHeaders
from worker.ratelimit import RateLimiter
from worker.routing import Action, Attempt, Decision, ParkReason, Policy, decide
from worker.settlement import Settlement

log = get_logger(__name__)


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


@dataclass(frozen=True)
class Timing:
    """How long claims last and how long a worker may wait in-process."""

    lease_s: float
    probe_interval_s: float = 30.0
    max_inline_wait_s: float = 1.0
    breaker_wait_s: float = 1.0


class Meter(Protocol):
    """Where deliveries report what they saw (``worker.metrics.Meter`` in a worker)."""

    def answered(self, outcome: Outcome, seconds: float) -> None: ...
    def finished(self, result: str) -> None: ...
    def waited(self, seconds: float) -> None: ...


class Delivery:
    """Delivers one dispatched job; every decision is the routing table's."""

    def __init__(  # noqa: PLR0913 - the components deliver() coordinates
        self,
        jobs: JobStore,
        limiter: RateLimiter,
        gateway: GatewayClient,
        policy: Policy,
        settlement: Settlement,
        timing: Timing,
        meter: Meter,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._jobs = jobs
        self._limiter = limiter
        self._gateway = gateway
        self._policy = policy
        self._settlement = settlement
        self._timing = timing
        self._meter = meter
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def deliver(self, job_id: str, gen: int) -> Result:
        """Deliver one dispatch of a job; returns what became of it."""
        result = self._deliver(job_id, gen)
        self._meter.finished(result)
        return result

    def _deliver(self, job_id: str, gen: int) -> Result:
        execution = Execution(job_id, gen, holder=uuid.uuid4().hex)
        verdict, detail = self._jobs.begin(
            execution,
            now=self._clock(),
            lease_s=self._timing.lease_s,
            probe_interval_s=self._timing.probe_interval_s,
        )
        if verdict in {Verdict.STALE, Verdict.BUSY}:
            log.debug("job.dispatch_dropped", job_id=job_id, verdict=verdict)
            return Result.DROPPED
        if verdict is Verdict.DUPLICATE:
            log.info("job.duplicate", job_id=job_id, wamid=detail)
            return Result.DUPLICATE
        if verdict is Verdict.HELD:
            log.info("job.held", job_id=job_id)
            return Result.HALTED
        job = self._jobs.get(job_id)
        if job is None:  # expired from Redis between two calls: nothing left to send
            return Result.DROPPED
        if verdict is Verdict.WAIT:
            return self._wait(execution, self._timing.breaker_wait_s, "breaker_wait")
        if verdict is Verdict.BREAKER:
            decision = Decision.park(ParkReason.BILLING)
            return self._settle(execution, job, Outcome(code="BILL_001"), decision)
        if verdict is Verdict.EXPIRED:
            return self._settle(execution, job, Outcome.expired())
        if verdict is Verdict.LOST:
            # The last execution died during its call: the Gateway may have sent it.
            return self._settle(execution, job, Outcome(code=WORKER_LOST, ambiguous=True))
        return self._call(execution, job)

    def _call(self, execution: Execution, job: Job) -> Result:
        try:
            grant = self._limiter.acquire(
                job.account,
                execution,
                lease_s=self._timing.lease_s,
                max_wait_s=self._timing.max_inline_wait_s,
            )
        except ClaimLost:
            log.warning("job.claim_lost", job_id=job.id)
            return Result.DROPPED
        if grant.wait_s > 0:
            self._meter.waited(grant.wait_s)
        if not grant.reserved:
            # A long wait is spent on the schedule, not in this worker's memory.
            return self._wait(execution, grant.wait_s, "rate_wait")
        self._sleep(grant.wait_s)
        started = time.perf_counter()
        try:
            answer = self._gateway.send(job.message)
        except GatewayError as error:
            self._after_call(job, error.outcome, error.rate_limit, started)
            return self._settle(execution, job, error.outcome, error=error, called=True)
        self._after_call(job, answer.outcome, answer.rate_limit, started)
        return self._settle(execution, job, answer.outcome, wamid=answer.wamid, called=True)

    def _after_call(
        self, job: Job, outcome: Outcome, headers: RateLimitHeaders, started: float
    ) -> None:
        self._meter.answered(outcome, time.perf_counter() - started)
        self._limiter.observe(job.account, headers)

    def _wait(self, execution: Execution, delay_s: float, why: str) -> Result:
        self._jobs.retry(execution, now=self._clock(), delay_s=delay_s, code=None, action=why)
        return Result.WAITING

    def _settle(
        self,
        execution: Execution,
        job: Job,
        outcome: Outcome,
        decision: Decision | None = None,
        *,
        error: GatewayError | None = None,
        wamid: str | None = None,
        called: bool = False,
    ) -> Result:
        calls = job.attempts + (1 if called else 0)
        decision = decision or decide(
            outcome, Attempt(calls=calls, reschedules=job.reschedules), self._policy, rng=self._rng
        )
        now = self._clock()
        action = decision.action
        if action is Action.SENT:
            self._settlement.sent(execution, job, wamid or "", now=now)
            return Result.SENT
        if action is Action.RESCHEDULE:
            cooldown = now + (outcome.retry_after_s or decision.delay_s)
            self._jobs.retry(
                execution,
                now=now,
                delay_s=decision.delay_s,
                code=outcome.code,
                action=action,
                reschedule=True,
                cooldown_until=cooldown,
            )
            log.info("job.rescheduled", job_id=job.id, code=outcome.code, delay_s=decision.delay_s)
            return Result.RESCHEDULED
        if action is Action.BACKOFF:
            self._jobs.retry(
                execution, now=now, delay_s=decision.delay_s, code=outcome.code, action=action
            )
            log.info("job.retried", job_id=job.id, code=outcome.code, delay_s=decision.delay_s)
            return Result.RETRIED
        if action is Action.HALT:
            self._settlement.halted(execution, job, outcome, error, now=now)
            return Result.HALTED
        reason = decision.reason or ParkReason.PERMANENT
        self._settlement.parked(execution, job, outcome, reason, calls, error, now=now)
        return Result.PARKED
