"""Prometheus metrics, defined once; labels are bounded (codes, outcomes, configured accounts),
never numbers or ids.

Counters live in the process that counts (prometheus-client multiprocess mode sums the pool's
processes, dead ones included). Gauges that describe shared state (DLQ, queue, halt, breaker)
and the cluster-wide enqueue count are read from Redis at scrape time, so every worker reports
the same truth.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from worker.account_names import DEFAULT_ACCOUNT
from worker.observe.build_info import BuildInfoCollector
from worker.observe.metrics_dir import MULTIPROC_ENV
from worker.observe.status import AccountState, Snapshot
from worker.outcome import COUNTED_RESULTS, Outcome, Result
from worker.store.templates import HoldReason

API_RESPONSES = Counter(
    "msgworker_api_responses_total",
    "Gateway answers by code, group and HTTP status (transport failures: status none).",
    ["account", "code", "group", "status"],
)
JOBS = Counter(
    "msgworker_jobs_total",
    "What deliveries came to: sent, rescheduled, retried, parked, halted, duplicate.",
    ["account", "outcome"],
)
SEND_DURATION = Histogram(
    "msgworker_send_duration_seconds",
    "Time of one Gateway call, answer or failure.",
    buckets=(0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0),
)
CALL_ARRIVAL = Histogram(
    "msgworker_call_arrival_seconds",
    "How long after its rate-limit slot a call reached the Gateway, as its worker reckons it "
    "(where the limiter places the call).",
    buckets=(0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)
RATE_LIMIT_WAIT = Counter(
    "msgworker_rate_limit_wait_seconds_total",
    "Seconds deliveries waited for the cluster-wide rate limiter or a cooldown.",
    ["account"],
)
PAIR_WAITS = Counter(
    "msgworker_pair_waits_total",
    "Jobs sent back to the schedule to wait for their recipient's pair pacing.",
    ["account"],
)
IGNORED = Counter(
    "msgworker_gateway_values_ignored_total",
    "Values in Gateway answers refused as out of range (a limit of 0, a wait of a year).",
    ["value"],
)
# Named as serve's (worker.http.metrics), which counts the statuses its webhooks apply: a worker
# counts those that came before their send was recorded, applied with it; sums add the two.
DELIVERY_STATUSES = Counter(
    "msgworker_delivery_statuses_total",
    "Delivery statuses applied to jobs (repeats and stale ones not counted)",
    ["account", "status"],
)
DELIVERY_FAILURES = Counter(
    "msgworker_delivery_failures_total",
    "Failed deliveries, by account and WhatsApp error code (WA_<code>, else OTHER)",
    ["account", "code"],
)
ALERTS = Counter(
    "msgworker_alerts_total", "Alerts raised, by account and kind.", ["account", "kind"]
)
BROKER_REJECTED = Counter(
    "msgworker_broker_messages_rejected_total",
    "Items on the broker queue dropped unread (not JSON, not a task message, refused), by reason.",
    ["reason"],
)
REDIS_FAILOVERS = Counter(
    "msgworker_redis_failovers_total",
    "Times this worker found the Redis primary moved to another node (a Sentinel failover).",
)

REDIS_UP = "msgworker_redis_up"
REDIS_UP_HELP = "1 when the state in Redis could be read at this scrape, 0 when not."
# Codes and groups become labels only when known (the Gateway's documented ones, ours, and the
# routing table's); anything else an answer carries is counted under OTHER, so a Gateway
# inventing codes cannot create series. The DLQ record keeps the real code.
OTHER = "OTHER"
# The account label of a job whose account the deployment does not know (any more): the label's
# values are the configured accounts and this one.
UNKNOWN_ACCOUNT = "unknown"
KNOWN_CODES = frozenset(
    {
        "OK", "TIMEOUT", "CONNECTION", "WORKER_LOST", "EXPIRED",
        "AUTH_001", "AUTH_002", "AUTH_003", "AUTH_004", "AUTH_005",
        "WABA_001", "BILL_001", "BILL_002", "RATE_001", "GW_001",
    }
)  # fmt: skip
KNOWN_GROUPS = frozenset(
    {
        "UNAUTHORIZED", "INTERNAL_ERROR", "PAYMENT_REQUIRED", "BAD_REQUEST",
        "TOO_MANY_REQUESTS", "VALIDATION",
    }
)  # fmt: skip
_HTTP_CODE = re.compile(r"^HTTP_[1-5][0-9][0-9]$")


class Labels:
    """Bounded label values for codes, groups and accounts."""

    def __init__(
        self,
        codes: Iterable[str] = (),
        groups: Iterable[str] = (),
        accounts: Iterable[str] = (DEFAULT_ACCOUNT,),
        undelivered: Iterable[str] = (),
    ) -> None:
        self._codes = KNOWN_CODES | frozenset(codes)
        self._groups = KNOWN_GROUPS | frozenset(groups)
        self._undelivered = frozenset(undelivered)
        self.accounts = tuple(sorted(accounts))

    def account(self, account: str) -> str:
        return account if account in self.accounts else UNKNOWN_ACCOUNT

    def code(self, code: str) -> str:
        return code if code in self._codes or _HTTP_CODE.match(code) else OTHER

    def group(self, group: str | None) -> str:
        if group is None:
            return "none"
        return group if group in self._groups else OTHER

    def undelivered(self, code: str) -> str:
        """A failed delivery's code (``WA_131026``): one of those counted, else OTHER."""
        return code if code in self._undelivered else OTHER


ALERT_KINDS = ("halt", "billing", "retries_exhausted")


class PrometheusMeter:
    """What deliveries report; a seam so delivery logic never imports prometheus."""

    def __init__(self, labels: Labels | None = None) -> None:
        self._labels = labels or Labels()
        # Series that exist from the start, at 0, so rate() and alert rules see them.
        for account in self._labels.accounts:
            for outcome in sorted(COUNTED_RESULTS):
                JOBS.labels(account=account, outcome=outcome)
            for kind in ALERT_KINDS:
                ALERTS.labels(account=account, kind=kind)
            RATE_LIMIT_WAIT.labels(account=account)
            PAIR_WAITS.labels(account=account)

    def answered(self, account: str, outcome: Outcome, seconds: float) -> None:
        API_RESPONSES.labels(
            account=self._labels.account(account),
            code=self._labels.code(outcome.code),
            group=self._labels.group(outcome.group),
            status="none" if outcome.status is None else str(outcome.status),
        ).inc()
        SEND_DURATION.observe(seconds)

    def arrived(self, seconds: float) -> None:
        CALL_ARRIVAL.observe(seconds)

    def finished(self, account: str, result: Result) -> None:
        if result in COUNTED_RESULTS:
            JOBS.labels(account=self._labels.account(account), outcome=result).inc()

    def waited(self, account: str, seconds: float) -> None:
        RATE_LIMIT_WAIT.labels(account=self._labels.account(account)).inc(seconds)

    def pair_waited(self, account: str) -> None:
        PAIR_WAITS.labels(account=self._labels.account(account)).inc()

    def ignored(self, value: str) -> None:
        IGNORED.labels(value=value).inc()

    def delivery_status(self, account: str, status: str, code: str) -> None:
        """A delivery status applied as its send was recorded (``Settlement``'s meter)."""
        account = self._labels.account(account)
        DELIVERY_STATUSES.labels(account=account, status=status).inc()
        if status == "failed":
            DELIVERY_FAILURES.labels(account=account, code=self._labels.undelivered(code)).inc()

    def alerted(self, kind: str, account: str) -> None:
        """An incident opened (``Incidents``' ``on_fire``)."""
        ALERTS.labels(account=self._labels.account(account), kind=kind).inc()


def count_broker_rejected(reason: str) -> None:
    BROKER_REJECTED.labels(reason=reason).inc()


def sent_total() -> float:
    """The jobs this worker command has sent since it started (its pool's processes together,
    as /metrics counts them): for its heartbeat's sends of the last minute."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    return sum(
        sample.value
        for family in registry.collect()
        if family.name == "msgworker_jobs"
        for sample in family.samples
        if sample.name == "msgworker_jobs_total" and sample.labels.get("outcome") == "sent"
    )


def count_redis_failover() -> None:
    REDIS_FAILOVERS.inc()


class StateCollector(Collector):
    """Gauges of shared state, read from Redis when Prometheus scrapes."""

    def __init__(self, snapshot: Callable[[], Snapshot], labels: Labels | None = None) -> None:
        self._snapshot = snapshot
        self._labels = labels or Labels()

    def collect(self) -> Iterator[Any]:
        try:
            state = self._snapshot()
        except (RedisError, OSError):
            # /metrics must answer during a Redis outage: the counters stay true, and this says
            # the shared-state figures could not be read.
            yield GaugeMetricFamily(REDIS_UP, REDIS_UP_HELP, value=0)
            return
        yield GaugeMetricFamily(REDIS_UP, REDIS_UP_HELP, value=1)
        dlq = GaugeMetricFamily("msgworker_dlq_jobs", "Dead letters by code.", labels=["code"])
        by_label: dict[str, int] = {}
        for code, count in state.dead_letters.items():
            label = self._labels.code(code)
            by_label[label] = by_label.get(label, 0) + count
        for label, count in sorted(by_label.items()):
            dlq.add_metric([label], count)
        yield dlq
        for name, help_text, value in (
            ("msgworker_queue_depth", "Jobs due now, not yet sent.", state.depth),
            ("msgworker_scheduled_jobs", "Jobs waiting for a later time.", state.scheduled),
            ("msgworker_in_flight_jobs", "Jobs being sent right now.", state.in_flight),
            (
                "msgworker_redis_replicas_missing",
                "Redis replicas short of REDIS_MIN_REPLICAS: above 0, sending pauses.",
                state.engines.replicas_missing,
            ),
        ):
            yield GaugeMetricFamily(name, help_text, value=value)
        per_account: tuple[tuple[str, str, Callable[[AccountState], float]], ...] = (
            ("msgworker_held_jobs", "Jobs held behind a halt.", lambda a: a.held),
            ("msgworker_halted", "1 while the account is halted.", lambda a: a.halt is not None),
            (
                "msgworker_billing_breaker_open",
                "1 while the billing breaker is open.",
                lambda a: a.breaker is not None,
            ),
            (
                "msgworker_bulk_paused",
                "1 while the bulk lane is paused: Meta doubted the sender (131048, 130429).",
                lambda a: a.bulk_paused_until is not None,
            ),
        )
        for name, help_text, read in per_account:
            gauge = GaugeMetricFamily(name, help_text, labels=["account"])
            for account, account_state in state.accounts.items():
                gauge.add_metric([account], float(read(account_state)))
            yield gauge
        yield _template_holds(state)
        enqueued = CounterMetricFamily(
            "msgworker_enqueued", "Jobs enqueued, cluster-wide (read from Redis)."
        )
        enqueued.add_metric([], state.enqueued)
        yield enqueued


def _template_holds(state: Snapshot) -> GaugeMetricFamily:
    """Templates held, by account and reason: each reason at 0 too, so the alert rules and the
    dashboard see the series before the first hold."""
    gauge = GaugeMetricFamily(
        "msgworker_template_holds",
        "Templates held (WhatsApp paused or disabled them, or an operator held them).",
        labels=["account", "reason"],
    )
    for account, account_state in state.accounts.items():
        for reason in HoldReason:
            held = sum(h.reason == reason for h in account_state.templates_held)
            gauge.add_metric([account, reason.value], float(held))
    return gauge


def serve_metrics(
    port: int,
    snapshot: Callable[[], Snapshot],
    *,
    labels: Labels | None = None,
    host: str = "0.0.0.0",  # noqa: S104
    rejected_reasons: Iterable[str] = (),
) -> CollectorRegistry:
    """Serve /metrics on ``host:port``: the pool's counters plus the shared-state gauges."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    registry.register(BuildInfoCollector("worker"))
    registry.register(StateCollector(snapshot, labels))
    PrometheusMeter(labels)  # the outcome and alert series exist from the first scrape
    for reason in rejected_reasons:  # the broker's reasons for dropping a message, from zero
        BROKER_REJECTED.labels(reason=reason)
    start_http_server(port, addr=host, registry=registry)
    return registry
