"""Incidents: one alert per incident across workers, de-duplicated in Redis."""

import threading
import time

import pytest
import redis

from tests.support.receiver import Recorder
from worker.observe.incidents import AlertKind, AlertStatus, Incidents
from worker.store.keys import Keys

# One alert per incident, de-duplicated in Redis


def test_open_twice_alerts_once_across_workers(redis_url, dispatch):
    """Two workers opening the same incident produce one firing alert between them."""
    recorders = [Recorder(), Recorder()]
    clients = [redis.Redis.from_url(redis_url, decode_responses=True) for _ in recorders]
    workers = [
        Incidents(client, Keys(), dispatch([recorder]))
        for client, recorder in zip(clients, recorders, strict=True)
    ]
    opened = [
        worker.open(AlertKind.HALT, "acme", summary="halted", code="AUTH_001") for worker in workers
    ]
    for worker in workers:
        worker._dispatcher.flush()
    for client in clients:
        client.close()
    assert opened == [True, False]
    fired = recorders[0].alerts + recorders[1].alerts
    assert [(a.kind, a.status, a.account, a.code) for a in fired] == [
        (AlertKind.HALT, AlertStatus.FIRING, "acme", "AUTH_001")
    ]


def test_concurrent_opens_alert_once(redis_client, dispatch):
    """Many threads racing to open one incident: exactly one of them opens it."""
    recorder = Recorder()
    incidents = Incidents(redis_client, Keys(), dispatch([recorder]))
    results = []
    start = threading.Barrier(8)

    def race():
        start.wait()
        results.append(incidents.open(AlertKind.BILLING, "acme", summary="no balance"))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    incidents._dispatcher.flush()
    assert sorted(results) == [False] * 7 + [True]
    assert len(recorder.alerts) == 1


def test_incident_is_stored_under_its_key(redis_client, dispatch):
    """An open incident is a hash at Keys.incident with since, code and summary."""
    incidents = Incidents(redis_client, Keys(prefix="t:"), dispatch([Recorder()]))
    incidents.open(AlertKind.BILLING, "acme", summary="no balance", code="BILL_001")
    stored = redis_client.hgetall("t:incident:billing:acme")
    assert stored["code"] == "BILL_001"
    assert stored["summary"] == "no balance"
    assert float(stored["since"]) == pytest.approx(time.time(), abs=5)
    assert incidents.is_open(AlertKind.BILLING, "acme")
    assert not incidents.is_open(AlertKind.BILLING, "other")


def test_resolve_alerts_once(redis_client, dispatch):
    """Resolving an open incident sends one resolved alert; resolving again sends nothing."""
    recorder = Recorder()
    incidents = Incidents(redis_client, Keys(), dispatch([recorder]))
    incidents.open(AlertKind.BILLING, "acme", summary="no balance", code="BILL_001")
    first = incidents.resolve(AlertKind.BILLING, "acme", summary="balance topped up")
    second = incidents.resolve(AlertKind.BILLING, "acme", summary="balance topped up")
    incidents._dispatcher.flush()
    assert (first, second) == (True, False)
    firing, resolved = recorder.alerts
    assert resolved.status is AlertStatus.RESOLVED
    assert resolved.summary == "balance topped up"
    assert resolved.code == firing.code == "BILL_001"
    assert resolved.since == pytest.approx(firing.at)
    assert not incidents.is_open(AlertKind.BILLING, "acme")


def test_resolve_without_incident_sends_nothing(redis_client, dispatch):
    """Nothing open, nothing to resolve: no alert."""
    recorder = Recorder()
    incidents = Incidents(redis_client, Keys(), dispatch([recorder]))
    assert not incidents.resolve(AlertKind.HALT, "acme", summary="resumed")
    incidents._dispatcher.flush()
    assert recorder.alerts == []


def test_incident_reopens_after_resolve(redis_client, dispatch):
    """A new incident after a resolved one alerts again."""
    recorder = Recorder()
    incidents = Incidents(redis_client, Keys(), dispatch([recorder]))
    incidents.open(AlertKind.HALT, "acme", summary="halted")
    incidents.resolve(AlertKind.HALT, "acme", summary="resumed")
    assert incidents.open(AlertKind.HALT, "acme", summary="halted again")
    incidents._dispatcher.flush()
    assert [a.status for a in recorder.alerts] == [
        AlertStatus.FIRING,
        AlertStatus.RESOLVED,
        AlertStatus.FIRING,
    ]


# The retries_exhausted alert follows a rate, not single jobs


def test_retries_exhausted_opens_only_at_threshold(redis_client, dispatch):
    """Parks below the threshold alert nothing; the threshold-th opens one incident, once."""
    recorder = Recorder()
    incidents = Incidents(redis_client, Keys(), dispatch([recorder]))
    for i in range(2):
        incidents.note_retries_exhausted("acme", now=1000.0 + i, threshold=3, window_s=60)
    assert not incidents.is_open(AlertKind.RETRIES_EXHAUSTED, "acme")
    for i in range(2, 6):
        incidents.note_retries_exhausted("acme", now=1000.0 + i, threshold=3, window_s=60)
    incidents._dispatcher.flush()
    assert incidents.is_open(AlertKind.RETRIES_EXHAUSTED, "acme")
    assert [(a.kind, a.status) for a in recorder.alerts] == [
        (AlertKind.RETRIES_EXHAUSTED, AlertStatus.FIRING)
    ]
    assert recorder.alerts[0].details["count"] == "3"


def test_retries_exhausted_counts_only_the_window(redis_client, dispatch):
    """Parks spread wider than the window never reach the threshold; the key expires."""
    incidents = Incidents(redis_client, Keys(), dispatch([Recorder()]))
    for i in range(10):
        incidents.note_retries_exhausted("acme", now=1000.0 + 40 * i, threshold=3, window_s=60)
    assert not incidents.is_open(AlertKind.RETRIES_EXHAUSTED, "acme")
    assert redis_client.zcard(Keys().exhausted("acme")) == 2
    assert 0 < redis_client.ttl(Keys().exhausted("acme")) <= 61


def test_retries_exhausted_resolves_when_quiet(redis_client, dispatch):
    """The incident resolves once a whole window passes without a park, not before."""
    recorder = Recorder()
    incidents = Incidents(redis_client, Keys(), dispatch([recorder]))
    for i in range(3):
        incidents.note_retries_exhausted("acme", now=1000.0 + i, threshold=3, window_s=60)
    incidents.resolve_quiet_exhausted("acme", now=1030.0, window_s=60)
    assert incidents.is_open(AlertKind.RETRIES_EXHAUSTED, "acme")
    incidents.resolve_quiet_exhausted("acme", now=1063.0, window_s=60)
    incidents.resolve_quiet_exhausted("acme", now=1064.0, window_s=60)
    incidents._dispatcher.flush()
    assert not incidents.is_open(AlertKind.RETRIES_EXHAUSTED, "acme")
    assert [a.status for a in recorder.alerts] == [AlertStatus.FIRING, AlertStatus.RESOLVED]


def test_quiet_check_without_incident_reads_only_the_incident(redis_client, dispatch):
    """With no incident open the quiet check touches nothing else (cheap after every send)."""
    incidents = Incidents(redis_client, Keys(), dispatch([Recorder()]))
    redis_client.zadd(Keys().exhausted("acme"), {"x": 1000.0})
    before = redis_client.info("commandstats")
    incidents.resolve_quiet_exhausted("acme", now=5000.0)
    after = redis_client.info("commandstats")
    assert after.get("cmdstat_zcount") == before.get("cmdstat_zcount")
    assert (
        after["cmdstat_exists"]["calls"] == before.get("cmdstat_exists", {"calls": 0})["calls"] + 1
    )
