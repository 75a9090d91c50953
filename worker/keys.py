"""Every Redis key msgworker uses, under one prefix, keyed by account where state is per account."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_ACCOUNT = "default"
JOB_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True)
class Keys:
    """Key names for one prefix (``msgworker:`` by default)."""

    prefix: str = "msgworker:"

    # Jobs and their schedule
    def job(self, job_id: str) -> str:
        """Hash: the job record (state, attempts, last code, wamid, timestamps, generation)."""
        return f"{self.prefix}job:{job_id}"

    def history(self, job_id: str) -> str:
        """List: the job's events, oldest first (JSON)."""
        return f"{self.prefix}job:{job_id}:history"

    @property
    def due(self) -> str:
        """Sorted set: ``job_id|gen`` by the time it may be sent (now, later, after a wait)."""
        return f"{self.prefix}due"

    @property
    def leases(self) -> str:
        """Sorted set: ``job_id|gen`` dispatched or in flight, by when to dispatch it again."""
        return f"{self.prefix}leases"

    @property
    def enqueued_count(self) -> str:
        """String: jobs ever enqueued (a cluster-wide counter for metrics)."""
        return f"{self.prefix}stats:enqueued"

    def sent_in_second(self, second: int) -> str:
        """String: messages sent during this Unix second (kept two minutes)."""
        return f"{self.prefix}stats:sent:{second}"

    def held(self, account: str) -> str:
        """List: ``job_id`` of jobs held behind the account's halt, released by resume."""
        return f"{self.prefix}held:{account}"

    # Send-once
    def idempotency(self, account: str, key: str) -> str:
        """String: the job id first enqueued with this idempotency key."""
        return f"{self.prefix}idem:{account}:{key}"

    def ledger(self, account: str, key: str) -> str:
        """String: the wamid this idempotency key was sent as; its presence means sent."""
        return f"{self.prefix}sent:{account}:{key}"

    def claim(self, account: str, key: str) -> str:
        """String with a lease: the job execution currently sending this key."""
        return f"{self.prefix}claim:{account}:{key}"

    # Account switches
    def halt(self, account: str) -> str:
        """Hash: present while the account is halted (code, reason, since)."""
        return f"{self.prefix}halt:{account}"

    def breaker(self, account: str) -> str:
        """Hash: present while the account's billing breaker is open (since, code, half_open)."""
        return f"{self.prefix}breaker:{account}"

    def breaker_probe(self, account: str) -> str:
        """String with a lease: the job allowed through as the breaker's probe."""
        return f"{self.prefix}breaker:{account}:probe"

    def cooldown(self, account: str) -> str:
        """String with a TTL: every worker of the account waits until the time it holds."""
        return f"{self.prefix}cooldown:{account}"

    def window(self, account: str, span: str) -> str:
        """Sorted set: the requests of the sliding window ``sec`` or ``min``."""
        return f"{self.prefix}rate:{account}:{span}"

    def limits(self, account: str) -> str:
        """Hash: the limits learned from the Gateway's headers (sec, min)."""
        return f"{self.prefix}rate:{account}:limits"

    # Dead letters
    def dead_letter(self, job_id: str) -> str:
        """String: one DLQ record (JSON)."""
        return f"{self.prefix}dlq:record:{job_id}"

    @property
    def dead_letter_index(self) -> str:
        """Sorted set: parked job ids by parked_at."""
        return f"{self.prefix}dlq:index"

    @property
    def dead_letter_counts(self) -> str:
        """Hash: DLQ records by code."""
        return f"{self.prefix}dlq:counts"

    # Workers
    @property
    def workers(self) -> str:
        """Sorted set: worker commands by the last time each said it was alive."""
        return f"{self.prefix}workers"

    # Alerts
    def incident(self, kind: str, account: str) -> str:
        """Hash: present while an incident of this kind is open (one alert per incident)."""
        return f"{self.prefix}incident:{kind}:{account}"

    def exhausted(self, account: str) -> str:
        """Sorted set: recent retries_exhausted parks, for the rate alert."""
        return f"{self.prefix}exhausted:{account}"
