"""deliver(): claim and reserve a slot → wait → send → decide → record. The task is a thin adapter.

Redis round trips per send: one settlement script (which also learns from the answer's
rate-limit headers and says whether a retries-exhausted incident is open) and, for the first
job of a broker message's group, ``begin`` (checks, claim, rate-limit slot): each next job of
the group is begun by the settlement of a send before it, in the same round trip. Only a call
going out more than ``UNCHECKED_WAIT_S`` after begin's look (a wait for its slot) takes one
more, a fresh look at the halt, cooldown and billing breaker before the call, and only when
this process heard one of them set since begin's look, or could not hear (``SwitchWatch``).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from worker.errors import GatewayError, ReplicasMissing, WriteLost
from worker.logs import get_logger
from worker.outcome import WORKER_LOST, Outcome, RateLimitHeaders, Result
from worker.send.arrivals import Arrivals
from worker.send.gateway import GatewayClient
from worker.send.pace import CallPace
from worker.send.reconcile import Reconciliation
from worker.send.routing import Action, Attempt, Decision, ParkReason, Policy, decide
from worker.send.settlement import Answer, Settlement
from worker.store.claims import NOWHERE, Address, Claim, Execution, Opening, Verdict
from worker.store.ratelimit import RateLimit
from worker.store.records import Job
from worker.store.templates import TEMPLATE_PAUSED
from worker.store.transitions import Transitions

log = get_logger(__name__)

# A call going out this soon after begin's look at the switches is not looked after again: it
# is one already in flight for whatever switch came meanwhile. Long enough for the next job of
# a group to take its slot at an account's usual pace (80/s: 13 ms apart) without a round trip
# of its own; short against the time a halt or a cooldown takes to reach the workers (the
# Gateway's answer to a call: tens to hundreds of milliseconds).
UNCHECKED_WAIT_S = 0.02

# The code a job of an account the deployment no longer knows is held with.
ACCOUNT_UNKNOWN = "ACCOUNT_UNKNOWN"


# What a delivery did, by the action the settlement recorded.
RESULTS = {
    Action.SENT: Result.SENT,
    Action.RESCHEDULE: Result.RESCHEDULED,
    Action.BACKOFF: Result.RETRIED,
    Action.HALT: Result.HELD,  # the account is halted and the job held behind it
    Action.PARK: Result.PARKED,
}


# What a delivery did when begin or recheck left the job not ours to call.
NOT_OURS = {
    Verdict.STALE: Result.DROPPED,
    Verdict.BUSY: Result.DROPPED,
    Verdict.DUPLICATE: Result.DUPLICATE,
    Verdict.HELD: Result.HELD,
    Verdict.DEFERRED: Result.WAITING,
}


@dataclass(frozen=True)
class Timing:
    """How long claims last, how often the billing breaker probes, how long a wait for a probe."""

    lease_s: float
    probe_interval_s: float = 30.0
    breaker_wait_s: float = 1.0
    # How long a job waits when the replicas required did not take this worker's writes.
    replicas_wait_s: float = 1.0


@dataclass(frozen=True)
class Begun:
    """A dispatch's claim, and the switch watch's token from just before begin looked."""

    claim: Claim
    token: int | None


@dataclass(frozen=True)
class Delivered:
    """What one delivery did, and the group's next dispatch when its settlement began it."""

    result: Result
    next: Begun | None = None


class SwitchChanges(Protocol):
    """Whether a halt, breaker or cooldown may have been set since a token was taken
    (``worker.store.watch.SwitchWatch`` in a worker)."""

    def token(self) -> int | None: ...
    def changed(self, token: int | None) -> bool: ...


class AlwaysLook:
    """Knows of no change: every call that waited past ``UNCHECKED_WAIT_S`` looks again."""

    def token(self) -> int | None:
        return None

    def changed(self, token: int | None) -> bool:  # noqa: ARG002 - the protocol
        return True


class Meter(Protocol):
    """Where deliveries report what they saw (``worker.observe.metrics.Meter`` in a worker)."""

    def answered(self, account: str, outcome: Outcome, seconds: float) -> None: ...
    def arrived(self, seconds: float) -> None: ...
    def finished(self, account: str, result: Result) -> None: ...
    def waited(self, account: str, seconds: float) -> None: ...
    def pair_waited(self, account: str) -> None: ...
    def ignored(self, value: str) -> None: ...


class Delivery:
    """Delivers one dispatched job; every decision is the routing table's."""

    def __init__(  # noqa: PLR0913 - the components deliver() coordinates
        self,
        transitions: Transitions,
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
        pace: CallPace | None = None,
        arrivals: Arrivals | None = None,
        switches: SwitchChanges | None = None,
        stopping: Callable[[], bool] = lambda: False,
        reconciliation: Reconciliation | None = None,
        replicated: Callable[[Execution, Job], None] = lambda *_: None,
    ) -> None:
        """``stopping`` says the worker is shutting down: a group's jobs not begun yet are handed
        back to the schedule (the shutdown's grace is sized for one send, not for 16).
        ``replicated`` returns once the replicas required have this worker's writes so far, the
        execution's claim of the job among them (ReplicasMissing when they do not in time,
        WriteLost when the claim is not on the primary: a failover lost it)."""
        self._transitions = transitions
        self._gateways = gateways
        self._policy = policy
        self._rate = rate
        self._settlement = settlement
        self._timing = timing
        self._meter = meter
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._pace = pace or CallPace()
        self._arrivals = arrivals or Arrivals()
        self._reconciliation = reconciliation or Reconciliation()
        self._switches = switches or AlwaysLook()
        self._stopping = stopping
        self._replicated = replicated

    def deliver(self, job_id: str, gen: int, address: Address | None = None) -> Result:
        """Deliver one dispatch of a job; returns what became of it."""
        return self.deliver_many([(job_id, gen)], [address])[0]

    def deliver_many(
        self, dispatches: Sequence[tuple[str, int]], addresses: Sequence[Address | None] = ()
    ) -> list[Result]:
        """Deliver a group of dispatches (one broker message) one after the other.

        Each job is claimed just before its call and settled right after it; a send's settlement
        also begins the next job, saving that job a round trip. A crash mid-group leaves claimed
        only the job in hand and the one its settlement began (they come back when their claims
        run out); the rest come back with their leases. When the worker starts shutting down, no
        job after the first is begun: the rest are handed back at once (their leases end now),
        and the results stop at the last one begun.
        """
        openings = [
            self._opening(job_id, gen, address)
            for (job_id, gen), address in zip(
                dispatches, self._addresses(dispatches, addresses), strict=True
            )
        ]
        results: list[Result] = []
        begun: Begun | None = None
        for index, opening in enumerate(openings):
            if begun is None:
                if index > 0 and self._stopping():
                    rest = [o.execution for o in openings[index:]]
                    self._transitions.hand_back(rest, now=self._clock())
                    break
                token = self._switches.token()
                begun = Begun(self._transitions.open(opening, now=self._clock()), token)
            then = openings[index + 1] if index + 1 < len(openings) else None
            delivered = self._deliver(opening.execution, begun, then)
            job = begun.claim.job
            if job is not None:  # stale and busy dispatches read no job and count nothing
                self._meter.finished(job.account, delivered.result)
            results.append(delivered.result)
            begun = delivered.next
        return results

    def _addresses(
        self, dispatches: Sequence[tuple[str, int]], carried: Sequence[Address | None]
    ) -> list[Address]:
        """The jobs' addresses, which name the keys each begin takes: as their dispatches
        carried them, the rest read at once (a message from an older pump, a test)."""
        known = list(carried) or [None] * len(dispatches)
        missing = [n for n, address in enumerate(known) if address is None]
        if missing:
            read = self._transitions.addresses([dispatches[n][0] for n in missing])
            for n, address in zip(missing, read, strict=True):
                known[n] = address
        return [address or NOWHERE for address in known]

    def _opening(self, job_id: str, gen: int, address: Address) -> Opening:
        execution = Execution(job_id, gen, holder=uuid.uuid4().hex, address=address)
        timing = self._timing
        return Opening(
            execution, timing.lease_s, timing.probe_interval_s, self._rate, self._arrivals.ms
        )

    def _deliver(self, execution: Execution, begun: Begun, then: Opening | None) -> Delivered:
        """Deliver a begun dispatch; ``then`` is the group's next, begun by a send's settlement."""
        claim = begun.claim
        verdict, job = claim.verdict, claim.job
        if job is not None and claim.pair_wait:
            self._meter.pair_waited(job.account)
        elif claim.wait_s > 0 and job is not None:
            self._meter.waited(job.account, claim.wait_s)
        if verdict in NOT_OURS:
            return _not_ours(execution, claim)
        if job is None:  # every other verdict returns the job (stale and busy are dropped above)
            return Delivered(Result.DROPPED)
        if verdict is Verdict.GO:
            return self._at_slot(execution, job, begun, then)
        return self._claimed(execution, job, verdict, then)

    def _at_slot(
        self, execution: Execution, job: Job, begun: Begun, then: Opening | None
    ) -> Delivered:
        """Sleep until the slot, then, unless the call still goes out within ``UNCHECKED_WAIT_S``
        of begin's look at the switches or the switch watch heard nothing since ``token`` (taken
        before that look), look again: a halt, cooldown or breaker may have come.

        Both count from when begin ran, not from now: a job begun by the settlement of the one
        before it may reach this point a while later (that settlement's incidents, say)."""
        claim = begun.claim
        slot_at = claim.slot_at
        left = slot_at - self._clock()
        if left > 0:
            self._sleep(left)
        unchecked = self._clock() - claim.begun_at <= UNCHECKED_WAIT_S
        if unchecked or not self._switches.changed(begun.token):
            return self._claimed(execution, job, Verdict.GO, then, slot_at=slot_at)
        again = self._transitions.recheck(
            execution, job, now=self._clock(), probe_interval_s=self._timing.probe_interval_s
        )
        if again.verdict in NOT_OURS:
            return _not_ours(execution, again)
        return self._claimed(execution, job, again.verdict, then, slot_at=slot_at)

    def _claimed(
        self,
        execution: Execution,
        job: Job,
        verdict: Verdict,
        then: Opening | None,
        *,
        slot_at: float | None = None,
    ) -> Delivered:
        """The job is ours: wait for the probe, park, or call the Gateway (``slot_at``: when
        its slot came, for a call that took one)."""
        if verdict is Verdict.WAIT:
            self._settlement.breaker_wait(
                execution, delay_s=self._timing.breaker_wait_s, now=self._clock()
            )
            return Delivered(Result.WAITING)
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
        try:
            # What this worker wrote so far (the last settlement, this job's begin) must outlive
            # a failover before the call it leads to goes out.
            self._replicated(execution, job)
        except ReplicasMissing as missing:
            log.warning(
                "job.claim_lost" if isinstance(missing, WriteLost) else "job.replicas_missing",
                job_id=job.id,
                wanted=missing.wanted,
                acknowledged=missing.acknowledged,
            )
            # No call was made: the attempt, the slot and any probe are given back, and no
            # reschedule is counted (an outage of the replicas must not use up the job's cap).
            # WriteLost: this primary never had the claim (or it ran out): the retry finds the
            # job no longer this execution's and writes nothing.
            self._transitions.retry(
                execution,
                now=self._clock(),
                delay_s=self._timing.replicas_wait_s,
                action="replicas_wait",
            )
            return Delivered(Result.WAITING)
        answer = self._call(job, gateway, slot_at)
        return self._settle(execution, job, answer, called=True, then=then)

    def _call(self, job: Job, gateway: GatewayClient, slot_at: float | None) -> Answer:
        sent_s = None if slot_at is None else self._clock() - slot_at
        started = time.perf_counter()
        rate = self._rate.for_account(job.account)
        try:
            sent = gateway.send(job.message)
        except GatewayError as error:
            answer = Answer(error.outcome, rate.in_force(error.rate_limit), error=error)
        else:
            headers = self._reconciliation.for_settlement(
                job.account, rate.in_force(sent.rate_limit)
            )
            answer = Answer(sent.outcome, headers, wamid=sent.wamid)
        seconds = time.perf_counter() - started
        if sent_s is not None:
            accepted = answer.wamid is not None
            arrival_ms = self._arrivals.arrival_ms(sent_s, seconds, accepted=accepted)
            answer = replace(answer, arrival_ms=arrival_ms)
            if not answer.outcome.is_transport:  # a timeout's "arrival" is its deadline
                self._meter.arrived(arrival_ms / 1000)
        if answer.outcome.is_rate_limited:
            self._arrivals.refused()  # the Gateway said too many: an arrival not foreseen
        self._meter.answered(job.account, answer.outcome, seconds)
        self._pace.record(seconds)
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
        then: Opening | None = None,
    ) -> Delivered:
        """Decide on the answer and record it; ``then`` (the group's next dispatch) is begun by
        a send's settlement unless the worker is stopping."""
        outcome = answer.outcome
        calls = job.attempts + (1 if called else 0)
        decision = decision or decide(
            outcome, Attempt(calls=calls, reschedules=job.reschedules), self._policy, rng=self._rng
        )
        now = self._clock()
        then = None if self._stopping() else then
        token = self._switches.token() if then else None
        claim = self._settlement.record(
            execution, job, answer, decision, calls=calls, now=now, then=then
        )
        return Delivered(RESULTS[decision.action], None if claim is None else Begun(claim, token))


def _not_ours(execution: Execution, claim: Claim) -> Delivered:
    """What became of a dispatch begin or recheck left not ours to call, logged."""
    verdict = claim.verdict
    if verdict is Verdict.DUPLICATE:
        log.info("job.duplicate", job_id=execution.job_id, wamid=claim.detail)
    elif verdict is Verdict.HELD and claim.detail == TEMPLATE_PAUSED:
        log.info("job.held", job_id=execution.job_id, reason=TEMPLATE_PAUSED)
        return Delivered(Result.TEMPLATE_HELD)
    elif verdict is Verdict.HELD:
        log.info("job.held", job_id=execution.job_id)
    elif claim.pair_wait:
        log.debug("job.pair_wait", job_id=execution.job_id, wait_s=claim.wait_s)
    elif verdict is not Verdict.DEFERRED:
        log.debug("job.dispatch_dropped", job_id=execution.job_id, verdict=verdict)
    return Delivered(NOT_OURS[verdict])
