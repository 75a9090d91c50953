"""Alert sinks: each alert delivered off the sending path, to the log, a webhook, Alertmanager.

The ``AlertDispatcher`` hands each alert to every sink on that sink's own daemon thread.
``notify()`` never waits: a slow, failing or hanging sink costs its own thread, never the caller
or another sink, and a full queue drops the alert with a log event rather than grow without
bound. Like the Gateway client, these sinks speak HTTP, each with its own total deadline.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from worker.logs import get_logger
from worker.observe.incidents import CRITICAL_KINDS, RUNBOOK_URLS, Alert, AlertKind, AlertStatus

log = get_logger(__name__)


SERVICE = "msgworker"
ALERTMANAGER_PATH = "/api/v2/alerts"
SINK_TIMEOUT_S = 5.0
# Alertmanager resolves an alert nobody re-sends after its resolve_timeout (5 min by default):
# a halt that lasts an hour would show "resolved" after five minutes. A firing alert therefore
# carries an endsAt this far ahead; the resolved alert's endsAt (now) overrides it.
ALERTMANAGER_HOLD_S = 24 * 3600.0


class AlertSink(Protocol):
    def deliver(self, alert: Alert) -> None:
        """Deliver one alert; may raise and may be slow (the dispatcher isolates it)."""


def iso_utc(at: float) -> str:
    """Unix time as RFC 3339 in UTC (``2024-05-01T12:00:00.000+00:00``)."""
    return datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="milliseconds")


def sink_name(sink: AlertSink) -> str:
    """The name a sink is logged by: its ``name`` attribute, else its class."""
    name = getattr(sink, "name", None)
    return name if isinstance(name, str) else type(sink).__name__


class LogSink:
    """Every alert as a structured log event: the sink that works when nothing else does."""

    name = "log"

    def deliver(self, alert: Alert) -> None:
        if alert.status is AlertStatus.FIRING:
            emit, event = log.warning, "alert.firing"
        else:
            emit, event = log.info, "alert.resolved"
        emit(
            event,
            kind=str(alert.kind),
            account=alert.account,
            code=alert.code,
            summary=alert.summary,
            details=alert.details,
        )


class WebhookSink:
    """POSTs a generic JSON body to a URL; any answer but 2xx raises."""

    name = "webhook"

    def __init__(self, http: httpx.Client, url: str, *, timeout_s: float = SINK_TIMEOUT_S) -> None:
        self._http = http
        self._url = url
        self._timeout_s = timeout_s

    def deliver(self, alert: Alert) -> None:
        response = self._http.post(self._url, json=webhook_body(alert), timeout=self._timeout_s)
        response.raise_for_status()


def webhook_body(alert: Alert) -> dict[str, Any]:
    return {
        "kind": str(alert.kind),
        "status": str(alert.status),
        "account": alert.account,
        "code": alert.code,
        "summary": alert.summary,
        "details": dict(alert.details),
        "at": iso_utc(alert.at),
        "since": None if alert.since is None else iso_utc(alert.since),
    }


class AlertmanagerSink:
    """POSTs to Alertmanager's ``/api/v2/alerts``; any answer but 2xx raises."""

    name = "alertmanager"

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        *,
        timeout_s: float = SINK_TIMEOUT_S,
        hold_s: float = ALERTMANAGER_HOLD_S,
    ) -> None:
        self._http = http
        self._url = base_url.rstrip("/") + ALERTMANAGER_PATH
        self._timeout_s = timeout_s
        self._hold_s = hold_s

    def deliver(self, alert: Alert) -> None:
        body = [alertmanager_alert(alert, hold_s=self._hold_s)]
        response = self._http.post(self._url, json=body, timeout=self._timeout_s)
        response.raise_for_status()


def alertname(kind: AlertKind) -> str:
    """``retries_exhausted`` → ``MsgworkerRetriesExhausted``."""
    return "Msgworker" + "".join(part.capitalize() for part in kind.split("_"))


def alertmanager_alert(alert: Alert, *, hold_s: float = ALERTMANAGER_HOLD_S) -> dict[str, Any]:
    """One PostableAlert; its labels are its identity, so firing and resolved share them."""
    labels = {
        "alertname": alertname(alert.kind),
        "severity": "critical" if alert.kind in CRITICAL_KINDS else "warning",
        "service": SERVICE,
        "account": alert.account,
    }
    if alert.code:  # an empty label is no label to Alertmanager: omit it rather than send ""
        labels["code"] = alert.code
    description = alert.summary
    if alert.details:
        description += " (" + ", ".join(f"{k}={v}" for k, v in sorted(alert.details.items())) + ")"
    starts_at = alert.at if alert.since is None else alert.since
    # Alertmanager resolves an alert whose endsAt has passed.
    ends_at = alert.at if alert.status is AlertStatus.RESOLVED else alert.at + hold_s
    return {
        "labels": labels,
        "annotations": {
            "summary": alert.summary,
            "description": description,
            "runbook_url": RUNBOOK_URLS[alert.kind],
        },
        "startsAt": iso_utc(starts_at),
        "endsAt": iso_utc(ends_at),
    }


class _SinkWorker:
    """One sink's bounded queue and its thread."""

    def __init__(self, sink: AlertSink, *, queue_size: int) -> None:
        self.sink = sink
        self.name = sink_name(sink)
        self._queue_size = queue_size
        self._pending: deque[Alert] = deque()
        self._in_flight = False
        self._stopping = False
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    def offer(self, alert: Alert) -> bool:
        """Queue the alert without waiting; False when the queue is full."""
        with self._ready:
            if len(self._pending) >= self._queue_size:
                return False
            self._pending.append(alert)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"alerts-{self.name}", daemon=True
                )
                self._thread.start()
            self._ready.notify_all()
            return True

    def wait_idle(self, deadline: float) -> bool:
        """Wait until every queued alert was handed to the sink, or the monotonic deadline."""
        with self._ready:
            while self._pending or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._ready.wait(remaining)
            return True

    def stop(self, deadline: float) -> int:
        """Stop after the delivery in progress; return how many queued alerts were dropped."""
        with self._ready:
            self._stopping = True
            dropped = len(self._pending)
            self._pending.clear()
            self._ready.notify_all()
            thread = self._thread
        if thread is not None:
            # A sink stuck past the deadline keeps its daemon thread; it dies with the process.
            thread.join(max(0.0, deadline - time.monotonic()))
        return dropped

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._stopping:
                    self._ready.wait()
                if self._stopping:
                    return
                alert = self._pending.popleft()
                self._in_flight = True
            try:
                self._deliver(alert)
            finally:
                with self._ready:
                    self._in_flight = False
                    self._ready.notify_all()

    def _deliver(self, alert: Alert) -> None:
        try:
            self.sink.deliver(alert)
        except Exception as exc:  # noqa: BLE001 - any sink failure is logged, none may escape
            # The type and status only: an error's text can hold the URL and its credentials.
            status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
            log.warning(
                "alert.sink_failed",
                sink=self.name,
                kind=str(alert.kind),
                alert_status=str(alert.status),
                account=alert.account,
                error=type(exc).__name__,
                http_status=status,
            )


class AlertDispatcher:
    """Hands alerts to sinks on background daemon threads; notify() never blocks."""

    def __init__(
        self,
        sinks: Sequence[AlertSink],
        *,
        queue_size: int = 1000,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._sinks = tuple(sinks)
        self._queue_size = queue_size
        self._on_close = on_close
        self._closed = False
        self._workers = self._new_workers()
        # Celery's prefork children fork after import: a child starts with fresh queues and no
        # inherited (dead) threads or locks, and starts its own threads on its first alert.
        os.register_at_fork(after_in_child=_after_fork_hook(self))

    def _new_workers(self) -> list[_SinkWorker]:
        return [_SinkWorker(sink, queue_size=self._queue_size) for sink in self._sinks]

    def _reset_after_fork(self) -> None:
        self._workers = self._new_workers()

    def notify(self, alert: Alert) -> None:
        """Queue the alert for every sink; a full queue drops it for that sink, logged."""
        if self._closed:
            self._dropped(alert, sink="*", reason="closed")
            return
        for worker in self._workers:
            if not worker.offer(alert):
                self._dropped(alert, sink=worker.name, reason="queue_full")

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every queued alert was delivered (or failed); False on timeout."""
        deadline = time.monotonic() + timeout_s
        idle = [worker.wait_idle(deadline) for worker in self._workers]  # wait on every sink
        return all(idle)

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued within the timeout, then stop; later alerts are dropped."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout_s
        self.flush(timeout_s)
        for worker in self._workers:
            dropped = worker.stop(deadline)
            if dropped:
                log.warning("alert.dropped", sink=worker.name, reason="closed", count=dropped)
        if self._on_close is not None:
            self._on_close()

    @staticmethod
    def _dropped(alert: Alert, *, sink: str, reason: str) -> None:
        log.warning(
            "alert.dropped",
            sink=sink,
            reason=reason,
            kind=str(alert.kind),
            alert_status=str(alert.status),
            account=alert.account,
        )


def _after_fork_hook(dispatcher: AlertDispatcher) -> Callable[[], None]:
    # A weak reference: at-fork hooks cannot be unregistered and must not keep dispatchers alive.
    ref = weakref.ref(dispatcher)

    def hook() -> None:
        alive = ref()
        if alive is not None:
            alive._reset_after_fork()  # noqa: SLF001 - the dispatcher's own hook

    return hook


def build_dispatcher(
    *,
    webhook_url: str | None,
    alertmanager_url: str | None,
    http: httpx.Client | None = None,
) -> AlertDispatcher:
    """A LogSink always, plus a sink per configured URL; an http client made here is closed
    by ``close()``. Its connections open on first use, in the process that sends."""
    sinks: list[AlertSink] = [LogSink()]
    owned: httpx.Client | None = None
    if (webhook_url or alertmanager_url) and http is None:
        http = owned = httpx.Client(timeout=SINK_TIMEOUT_S, follow_redirects=False)
    if webhook_url and http is not None:
        sinks.append(WebhookSink(http, webhook_url))
    if alertmanager_url and http is not None:
        sinks.append(AlertmanagerSink(http, alertmanager_url))
    return AlertDispatcher(sinks, on_close=owned.close if owned is not None else None)
