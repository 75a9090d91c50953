"""Codes, groups and accounts become metric labels only when known: a bounded set."""

from __future__ import annotations

import secrets

from prometheus_client import REGISTRY

from worker.observe import metrics
from worker.observe.status import Snapshot
from worker.outcome import Outcome


def series(name: str) -> list[dict[str, str]]:
    return [s.labels for f in REGISTRY.collect() for s in f.samples if s.name == name]


def test_thirty_invented_codes_make_no_new_series():
    """400 with codes Z<random> x30: one OTHER series, however many codes were invented."""
    meter = metrics.PrometheusMeter(metrics.Labels(codes={"MY_CODE"}))
    before = len(series("msgworker_api_responses_total"))
    for _ in range(30):
        code = "Z" + secrets.token_hex(4).upper()
        meter.answered("default", Outcome(code=code, group="G" + code, status=400), 0.01)
    meter.answered("default", Outcome(code="MY_CODE", group="VALIDATION", status=400), 0.01)
    found = series("msgworker_api_responses_total")
    assert len(found) - before <= 2
    other = {"account": "default", "code": "OTHER", "group": "OTHER", "status": "400"}
    assert other in found
    assert not any(s["code"].startswith("Z") for s in found)
    assert {**other, "code": "MY_CODE", "group": "VALIDATION"} in found


def test_early_statuses_are_counted_in_serves_series_with_bounded_codes():
    """A delivered and two failed counted by a worker: in msgworker_delivery_statuses_total and
    msgworker_delivery_failures_total, as serve names them; a code not counted is OTHER."""
    meter = metrics.PrometheusMeter(metrics.Labels(undelivered={"WA_131026"}))

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"account": "default", **labels}) or 0.0

    statuses = "msgworker_delivery_statuses_total"
    failures = "msgworker_delivery_failures_total"
    before = (
        value(statuses, status="delivered"),
        value(statuses, status="failed"),
        value(failures, code="WA_131026"),
        value(failures, code="OTHER"),
    )
    meter.delivery_status("default", "delivered", "")
    meter.delivery_status("default", "failed", "WA_131026")
    meter.delivery_status("default", "failed", "WA_" + secrets.token_hex(4))
    after = (
        value(statuses, status="delivered"),
        value(statuses, status="failed"),
        value(failures, code="WA_131026"),
        value(failures, code="OTHER"),
    )
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 2, 1, 1]
    assert not any(s["code"].startswith("WA_") and len(s["code"]) == 11 for s in series(failures))


def test_accounts_are_labels_only_when_configured():
    """Counts of a configured account carry its name; any other account's share one label,
    whatever it is called, so a job naming a stray account cannot create series."""
    meter = metrics.PrometheusMeter(metrics.Labels(accounts={"brand_a", "brand_b"}))
    for account in ("brand_a", "brand_b", "typo", "gone" + secrets.token_hex(4)):
        meter.answered(account, Outcome(code="OK", status=200), 0.01)
        meter.finished(account, "sent")
        meter.waited(account, 0.5)
        meter.alerted("halt", account)
    for name in (
        "msgworker_api_responses_total",
        "msgworker_jobs_total",
        "msgworker_rate_limit_wait_seconds_total",
        "msgworker_alerts_total",
    ):
        accounts = {s["account"] for s in series(name)}
        assert {"brand_a", "brand_b", metrics.UNKNOWN_ACCOUNT} <= accounts, name
        assert "typo" not in accounts, name
        assert not any(a.startswith("gone") for a in accounts), name


def test_every_configured_account_has_its_series_from_the_start():
    """Before any send, each configured account's outcome and alert series exist at 0, so rate()
    and the alert rules see them."""
    metrics.PrometheusMeter(metrics.Labels(accounts={"fresh_a", "fresh_b"}))
    for account in ("fresh_a", "fresh_b"):
        sent = {"account": account, "outcome": "sent"}
        assert sent in series("msgworker_jobs_total")
        assert {"account": account, "kind": "halt"} in series("msgworker_alerts_total")


def test_dead_letters_of_unknown_codes_are_one_gauge_series():
    """The DLQ gauge sums unknown codes under OTHER; known codes and HTTP_<status> keep theirs."""
    dead = {f"Z{i}": 1 for i in range(30)} | {"GW_001": 2, "HTTP_502": 1}
    snapshot = Snapshot(
        queue="q",
        ready=0,
        in_broker=0,
        scheduled=0,
        in_flight=0,
        enqueued=0,
        sends_per_s=0.0,
        dead_letters=dead,
        accounts={},
    )
    families = {f.name: f for f in metrics.StateCollector(lambda: snapshot).collect()}
    samples = {s.labels["code"]: s.value for s in families["msgworker_dlq_jobs"].samples}
    assert samples == {"OTHER": 30, "GW_001": 2, "HTTP_502": 1}
