"""What follows a decision: the record written, and the one alert an incident deserves."""

from __future__ import annotations

from worker.errors import GatewayError
from worker.logs import get_logger
from worker.observe.incidents import AlertKind, Incidents
from worker.outcome import Outcome, RateLimitHeaders
from worker.send.routing import ParkReason
from worker.store.deadletters import DeadLetter
from worker.store.jobs import Execution, Job, JobStore

log = get_logger(__name__)


class Settlement:
    """Records sent, parked and held jobs; opens and resolves incidents."""

    def __init__(self, jobs: JobStore, incidents: Incidents) -> None:
        self._jobs = jobs
        self._incidents = incidents

    def sent(
        self,
        execution: Execution,
        job: Job,
        wamid: str,
        headers: RateLimitHeaders,
        *,
        now: float,
    ) -> None:
        breaker_closed = self._jobs.mark_sent(execution, wamid, now=now, headers=headers)
        log.debug("job.sent", job_id=job.id, wamid=wamid, account=job.account)
        self._incidents.resolve_quiet_exhausted(job.account, now=now)
        if breaker_closed:
            log.warning("billing.breaker_closed", account=job.account)
            self._incidents.resolve(
                AlertKind.BILLING,
                job.account,
                summary="Gateway accepts messages again (balance back)",
            )

    def halted(
        self,
        execution: Execution,
        job: Job,
        outcome: Outcome,
        error: GatewayError | None,
        headers: RateLimitHeaders,
        *,
        now: float,
    ) -> None:
        description = error.description if error else ""
        _, halt_set = self._jobs.hold(
            execution, now=now, code=outcome.code, reason=description, headers=headers
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
        outcome: Outcome,
        reason: ParkReason,
        calls: int,
        error: GatewayError | None,
        headers: RateLimitHeaders,
        *,
        now: float,
    ) -> None:
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
        applied, breaker_opened = self._jobs.park(
            execution,
            now=now,
            code=outcome.code,
            reason=reason,
            record=record.to_dict(),
            open_breaker=billing,
            headers=headers,
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
