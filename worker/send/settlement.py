"""What follows a decision: the record written, and the one alert an incident deserves.

Every outcome of a claimed job is recorded here, from the answer and the decision: sent,
rescheduled (a RATE_001 and the account's cooldown), retried (a backoff), held (behind the
account's halt) and parked, and the short wait for the billing breaker's probe. Each is one
script on the job store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from redis.exceptions import RedisError

from worker.errors import GatewayError
from worker.logs import get_logger
from worker.observe.incidents import AlertKind, Incidents
from worker.outcome import Outcome, RateLimitHeaders
from worker.send.routing import Action, Decision, ParkReason
from worker.store.claims import Claim, Execution, Opening
from worker.store.deadletters import DeadLetter
from worker.store.records import Job
from worker.store.transitions import SentRecord, Transitions

log = get_logger(__name__)


@dataclass(frozen=True)
class Answer:
    """One Gateway call's outcome, with what the settlement needs of it."""

    outcome: Outcome
    headers: RateLimitHeaders
    error: GatewayError | None = None
    wamid: str | None = None
    # When the call reached the Gateway, in ms after its slot (None: no call, or none with a slot).
    arrival_ms: int | None = None


class StatusMeter(Protocol):
    """Where the delivery statuses a send's settlement applied are counted (statuses that came
    before the send was recorded: serve kept them uncounted). ``code``: a failed one's."""

    def delivery_status(self, account: str, status: str, code: str) -> None: ...


class Settlement:
    """Records what became of a claimed job; opens and resolves incidents; counts the delivery
    statuses a send's record applied."""

    def __init__(self, transitions: Transitions, incidents: Incidents, meter: StatusMeter) -> None:
        self._transitions = transitions
        self._incidents = incidents
        self._meter = meter

    def record(
        self,
        execution: Execution,
        job: Job,
        answer: Answer,
        decision: Decision,
        *,
        calls: int,
        now: float,
        then: Opening | None = None,
    ) -> Claim | None:
        """Record the decision taken on ``answer``; ``calls`` counts this attempt's call.

        ``then`` is the group's next dispatch: after a send it is begun in the same round trip,
        and its claim returned (None when it was not begun: begin it on its own).
        """
        action = decision.action
        if action is Action.SENT:
            return self.sent(execution, job, answer, now=now, then=then)
        if action in {Action.RESCHEDULE, Action.BACKOFF}:
            self.retried(execution, job, answer, decision, now=now)
        elif action is Action.HALT:
            self.held(execution, job, answer, now=now)
        else:
            reason = decision.reason or ParkReason.PERMANENT
            self.parked(execution, job, answer, reason=reason, calls=calls, now=now)
        return None

    def sent(
        self,
        execution: Execution,
        job: Job,
        answer: Answer,
        *,
        now: float,
        then: Opening | None = None,
    ) -> Claim | None:
        wamid = answer.wamid or ""
        record = self._transitions.mark_sent(
            execution,
            wamid,
            now=now,
            headers=answer.headers,
            arrival_ms=answer.arrival_ms,
            then=then,
        )
        log.debug("job.sent", job_id=job.id, wamid=wamid, account=job.account)
        for early in record.early:
            self._meter.delivery_status(job.account, early.status, early.code)
        try:
            self._resolve_incidents(job.account, record, now=now)
        except RedisError as exc:
            # The send is recorded and the group's next job claimed: that job must still be
            # called, not left claimed until its claim runs out for an incident's sake.
            log.warning("incident.resolve_failed", account=job.account, error=type(exc).__name__)
        return record.next

    def _resolve_incidents(self, account: str, record: SentRecord, *, now: float) -> None:
        if record.exhausted_open:
            self._incidents.resolve_quiet_exhausted(account, now=now)
        if record.breaker_closed:
            log.warning("billing.breaker_closed", account=account)
            self._incidents.resolve(
                AlertKind.BILLING,
                account,
                summary="Gateway accepts messages again (balance back)",
            )

    def retried(
        self, execution: Execution, job: Job, answer: Answer, decision: Decision, *, now: float
    ) -> None:
        """Back on the schedule after the decision's delay: a reschedule or a backoff."""
        outcome = answer.outcome
        rescheduled = decision.action is Action.RESCHEDULE
        self._transitions.retry(
            execution,
            now=now,
            delay_s=decision.delay_s,
            action=decision.action,
            outcome=outcome,
            # Every worker of the account waits out a RATE_001, not just this job.
            cooldown_until=now + (outcome.retry_after_s or decision.delay_s)
            if rescheduled
            else None,
            headers=answer.headers,
            arrival_ms=answer.arrival_ms,
        )
        event = "job.rescheduled" if rescheduled else "job.retried"
        log.info(event, job_id=job.id, code=outcome.code, delay_s=decision.delay_s)

    def breaker_wait(self, execution: Execution, *, delay_s: float, now: float) -> None:
        """Another worker holds the billing breaker's probe: look again after ``delay_s``."""
        self._transitions.retry(execution, now=now, delay_s=delay_s, action="breaker_wait")

    def held(self, execution: Execution, job: Job, answer: Answer, *, now: float) -> None:
        """The halt action: the account is halted (its incident opened when newly so) and the
        job held behind the halt."""
        outcome, error = answer.outcome, answer.error
        description = error.description if error else ""
        _, halt_set = self._transitions.hold(
            execution,
            now=now,
            code=outcome.code,
            reason=description,
            headers=answer.headers,
            arrival_ms=answer.arrival_ms,
        )
        log.warning("job.held", job_id=job.id, code=outcome.code, account=job.account)
        if halt_set:
            log.error("account.halted", account=job.account, code=outcome.code, reason=description)
            self._incidents.open(
                AlertKind.HALT,
                job.account,
                summary=f"Sending halted: the Gateway answered {outcome.code}; fix the key: "
                "the account resumes by itself once a probe succeeds (or `msgworker resume`)",
                code=outcome.code,
                details={"description": description},
            )

    def parked(
        self,
        execution: Execution,
        job: Job,
        answer: Answer,
        *,
        reason: ParkReason,
        calls: int,
        now: float,
    ) -> None:
        """Write the dead letter (``calls`` Gateway calls made), opening the breaker for billing."""
        outcome, error = answer.outcome, answer.error
        record = DeadLetter(
            id=job.id,
            idempotency_key=job.key,
            account=job.account,
            message=job.message,
            code=outcome.code,
            group=outcome.group,
            status=outcome.status,
            description=error.description if error else "",
            params=error.params if error else {},
            reason=reason,
            attempts=calls,
            enqueued_at=job.enqueued_at,
            parked_at=now,
            expires_at=job.expires_at,
        )
        billing = reason is ParkReason.BILLING
        applied, breaker_opened = self._transitions.park(
            execution,
            now=now,
            code=outcome.code,
            reason=reason,
            record=record.to_dict(),
            open_breaker=billing,
            headers=answer.headers,
            arrival_ms=answer.arrival_ms,
        )
        if not applied:
            return
        log.warning("job.parked", job_id=job.id, code=outcome.code, reason=reason, attempts=calls)
        if breaker_opened:
            log.error("billing.breaker_opened", account=job.account, code=outcome.code)
            self._incidents.open(
                AlertKind.BILLING,
                job.account,
                summary="Balance ran out (BILL_001): jobs are parked without calling the Gateway; "
                "top up, then run `msgworker dlq replay --code BILL_001`",
                code=outcome.code,
            )
        if reason is ParkReason.RETRIES_EXHAUSTED:
            self._incidents.note_retries_exhausted(job.account, now=now)
