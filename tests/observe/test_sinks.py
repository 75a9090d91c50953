"""Alert sinks: every alert delivered to every sink without ever blocking the sender."""

import os
import threading
from datetime import UTC, datetime

import httpx
import pytest
import structlog

from tests.support.processes import wait_for
from tests.support.receiver import Recorder
from worker.observe.incidents import Alert, AlertKind, AlertStatus
from worker.observe.sinks import (
    AlertmanagerSink,
    LogSink,
    WebhookSink,
    build_dispatcher,
)

PASSWORD = "hunter2-webhook-secret"  # noqa: S105 - a fake secret the logs must not show


class Raising:
    """A sink that fails with a message holding a URL and its credentials."""

    name = "raising"

    def deliver(self, alert):
        raise RuntimeError(f"cannot reach https://ops:{PASSWORD}@hooks.example/{alert.kind}")


class Blocking:
    """A sink that takes its first alert and holds on to it until released."""

    name = "blocking"

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()
        self.alerts = []

    def deliver(self, alert):
        self.entered.set()
        self.release.wait(10)
        self.alerts.append(alert)


def alert(kind=AlertKind.HALT, status=AlertStatus.FIRING, **fields):
    fields.setdefault("account", "acme")
    fields.setdefault("summary", "sending halted")
    return Alert(kind=kind, status=status, **fields)


def events(logs, name):
    return [entry for entry in logs if entry["event"] == name]


# What each sink puts on the wire


def test_webhook_body_shape(dispatch, http):
    """The webhook receives the generic JSON body with an ISO 8601 UTC time."""
    receiver = dispatch.serve()
    dispatcher = dispatch([WebhookSink(http, receiver.url + "/hook")])
    dispatcher.notify(
        alert(code="AUTH_001", details={"reason": "key revoked"}, at=1_700_000_000.25)
    )
    assert dispatcher.flush()
    [(path, body)] = receiver.requests
    assert path == "/hook"
    assert body == {
        "kind": "halt",
        "status": "firing",
        "account": "acme",
        "code": "AUTH_001",
        "summary": "sending halted",
        "details": {"reason": "key revoked"},
        "at": "2023-11-14T22:13:20.250+00:00",
        "since": None,
    }
    assert datetime.fromisoformat(body["at"]).tzinfo == UTC


def test_alertmanager_firing_body_shape(dispatch, http):
    """A firing alert is a one-element list POSTed to /api/v2/alerts with labels and times."""
    receiver = dispatch.serve()
    dispatcher = dispatch([AlertmanagerSink(http, receiver.url + "/")])
    dispatcher.notify(alert(code="BILL_001", kind=AlertKind.BILLING, at=1_700_000_000.0))
    assert dispatcher.flush()
    [(path, body)] = receiver.requests
    assert path == "/api/v2/alerts"
    [posted] = body
    assert posted["labels"] == {
        "alertname": "MsgworkerBilling",
        "severity": "critical",
        "account": "acme",
        "service": "msgworker",
        "code": "BILL_001",
    }
    assert posted["annotations"]["summary"] == "sending halted"
    assert "description" in posted["annotations"]
    assert posted["annotations"]["runbook_url"] == "docs/runbooks.md#balance-ran-out-bill_001"
    assert posted["startsAt"] == "2023-11-14T22:13:20.000+00:00"
    # Held open far ahead, so Alertmanager's resolve_timeout does not end a live incident.
    ends_at = datetime.fromisoformat(posted["endsAt"]).timestamp()
    assert ends_at > 1_700_000_000.0 + 3600


def test_alertmanager_resolved_body_ends_now(dispatch, http):
    """A resolved alert keeps the labels, starts when the incident opened and ends now."""
    receiver = dispatch.serve()
    dispatcher = dispatch([AlertmanagerSink(http, receiver.url)])
    dispatcher.notify(
        alert(
            status=AlertStatus.RESOLVED, code="AUTH_001", since=1_700_000_000.0, at=1_700_000_600.0
        )
    )
    assert dispatcher.flush()
    [(_, [posted])] = receiver.requests
    assert posted["labels"]["alertname"] == "MsgworkerHalt"
    assert posted["labels"]["code"] == "AUTH_001"
    assert posted["startsAt"] == "2023-11-14T22:13:20.000+00:00"
    assert posted["endsAt"] == "2023-11-14T22:23:20.000+00:00"


@pytest.mark.parametrize(
    ("kind", "name", "severity"),
    [
        (AlertKind.HALT, "MsgworkerHalt", "critical"),
        (AlertKind.BILLING, "MsgworkerBilling", "critical"),
        (AlertKind.RETRIES_EXHAUSTED, "MsgworkerRetriesExhausted", "warning"),
    ],
)
def test_alertmanager_names_and_severities(dispatch, http, kind, name, severity):
    """Each kind has its alertname and severity; an alert without a code has no code label."""
    receiver = dispatch.serve()
    dispatcher = dispatch([AlertmanagerSink(http, receiver.url)])
    dispatcher.notify(alert(kind=kind))
    assert dispatcher.flush()
    [(_, [posted])] = receiver.requests
    assert posted["labels"]["alertname"] == name
    assert posted["labels"]["severity"] == severity
    assert "code" not in posted["labels"]


def test_log_sink_events():
    """Firing logs a warning event alert.firing, resolved an info event alert.resolved."""
    with structlog.testing.capture_logs() as logs:
        LogSink().deliver(alert(code="AUTH_001"))
        LogSink().deliver(alert(status=AlertStatus.RESOLVED, code="AUTH_001"))
    firing, resolved = logs
    assert (firing["event"], firing["log_level"]) == ("alert.firing", "warning")
    assert (resolved["event"], resolved["log_level"]) == ("alert.resolved", "info")
    assert firing["kind"] == "halt"
    assert firing["account"] == "acme"
    assert firing["code"] == "AUTH_001"
    assert firing["summary"] == "sending halted"


# Failures and slowness stay inside their sink


def test_failing_sinks_do_not_stop_the_others_and_are_logged(dispatch, http):
    """A 500 and a raising sink are logged by name and error type; the next sink still gets it."""
    failing = dispatch.serve()
    failing.status = 500
    healthy = dispatch.serve()
    secret_url = failing.url.replace("http://", f"http://ops:{PASSWORD}@") + "/hook"
    with structlog.testing.capture_logs() as logs:
        dispatcher = dispatch(
            [WebhookSink(http, secret_url), Raising(), WebhookSink(http, healthy.url)]
        )
        dispatcher.notify(alert())
        assert dispatcher.flush()
    assert len(failing.requests) == 1
    assert len(healthy.requests) == 1
    failures = {entry["sink"]: entry for entry in events(logs, "alert.sink_failed")}
    assert failures["webhook"]["error"] == "HTTPStatusError"
    assert failures["webhook"]["http_status"] == 500
    assert failures["raising"]["error"] == "RuntimeError"
    assert PASSWORD not in repr(logs)
    assert "hooks.example" not in repr(logs)


def test_hanging_sink_never_blocks_notify(dispatch):
    """notify() of 100 alerts returns before a hanging sink's first delivery could end."""
    hanging = dispatch.serve()
    hanging.hang = True
    healthy = dispatch.serve()
    with httpx.Client(timeout=0.5) as slow_http, httpx.Client(timeout=5.0) as http:
        dispatcher = dispatch(
            [WebhookSink(slow_http, hanging.url, timeout_s=0.5), WebhookSink(http, healthy.url)]
        )
        with structlog.testing.capture_logs() as logs:
            for i in range(100):
                dispatcher.notify(alert(summary=f"alert {i}"))
            # The hanging delivery ends only at its 0.5 s timeout, with a logged failure: none
            # yet means every notify() returned while the first delivery was still hanging.
            assert events(logs, "alert.sink_failed") == []
            wait_for(lambda: len(healthy.requests) == 100, timeout_s=10, what="healthy sink")
            assert len(hanging.requests) < 100
        hanging.release.set()
        dispatcher.close(timeout_s=5)


def test_full_queue_drops_with_a_log_event(dispatch):
    """With the sink busy and its queue full, further alerts are dropped and logged."""
    blocking = Blocking()
    dispatcher = dispatch([blocking], queue_size=2)
    with structlog.testing.capture_logs() as logs:
        dispatcher.notify(alert(summary="in flight"))
        wait_for(blocking.entered.is_set, timeout_s=5, what="delivery started")
        for i in range(4):
            dispatcher.notify(alert(summary=f"queued {i}"))
        blocking.release.set()
        assert dispatcher.flush()
    dropped = events(logs, "alert.dropped")
    assert [(d["sink"], d["reason"]) for d in dropped] == [("blocking", "queue_full")] * 2
    assert [a.summary for a in blocking.alerts] == ["in flight", "queued 0", "queued 1"]


def test_closed_dispatcher_drops_with_a_log_event(dispatch):
    """After close() an alert is dropped, logged, and no thread is started."""
    recorder = Recorder()
    dispatcher = dispatch([recorder])
    dispatcher.close()
    with structlog.testing.capture_logs() as logs:
        dispatcher.notify(alert())
    assert [d["reason"] for d in events(logs, "alert.dropped")] == ["closed"]
    assert recorder.alerts == []


def test_no_thread_until_first_notify(dispatch):
    """The delivery thread starts on the first alert, in the process that sends it."""
    before = {t.name for t in threading.enumerate()}
    dispatcher = dispatch([Recorder()])
    assert {t.name for t in threading.enumerate()} == before
    dispatcher.notify(alert())
    assert "alerts-recorder" in {t.name for t in threading.enumerate()}


@pytest.mark.processes
def test_forked_child_delivers_with_its_own_thread(dispatch, tmp_path):
    """A child forked after the parent used the dispatcher still delivers its alerts."""
    seen = tmp_path / "seen"

    class FileSink:
        name = "file"

        def deliver(self, alert):
            with seen.open("a") as out:
                out.write(f"{os.getpid()} {alert.summary}\n")

    dispatcher = dispatch([FileSink()])
    dispatcher.notify(alert(summary="parent"))
    assert dispatcher.flush()
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code, never return into pytest
        code = 1
        try:
            dispatcher.notify(alert(summary="child"))
            code = 0 if dispatcher.flush(timeout_s=5) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert seen.read_text().splitlines() == [f"{os.getpid()} parent", f"{pid} child"]


def test_build_dispatcher_always_logs_and_adds_configured_sinks(serve):
    """LogSink always; a webhook and Alertmanager sink when their URLs are set."""
    receiver = serve()
    only_log = build_dispatcher(webhook_url=None, alertmanager_url=None)
    every = build_dispatcher(webhook_url=receiver.url, alertmanager_url=receiver.url)
    try:
        assert [type(s) for s in only_log._sinks] == [LogSink]
        assert [type(s) for s in every._sinks] == [LogSink, WebhookSink, AlertmanagerSink]
        every.notify(alert())
        assert every.flush()
        assert sorted(path for path, _ in receiver.requests) == ["/", "/api/v2/alerts"]
    finally:
        only_log.close()
        every.close()
