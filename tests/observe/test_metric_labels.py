"""Codes and groups from the Gateway become metric labels only when known: a bounded set."""

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
    meter = metrics.Meter(metrics.Labels(codes={"MY_CODE"}))
    before = len(series("msgworker_api_responses_total"))
    for _ in range(30):
        code = "Z" + secrets.token_hex(4).upper()
        meter.answered(Outcome(code=code, group="G" + code, status=400), 0.01)
    meter.answered(Outcome(code="MY_CODE", group="VALIDATION", status=400), 0.01)
    found = series("msgworker_api_responses_total")
    assert len(found) - before <= 2
    assert {"code": "OTHER", "group": "OTHER", "status": "400"} in found
    assert not any(s["code"].startswith("Z") for s in found)
    assert {"code": "MY_CODE", "group": "VALIDATION", "status": "400"} in found


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
