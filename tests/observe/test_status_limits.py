"""`msgworker status` shows the rate limits in force per account: the ceilings applied, and
whether each was learned from the Gateway's headers."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_cli import run
from tests.support.cluster import API_KEY
from tests.support.hostile import HostileGateway, success
from worker.outcome import Result
from worker.service.runtime import Runtime
from worker.settings import Settings

pytestmark = pytest.mark.processes  # every test here runs real child processes


@pytest.fixture
def gateway():
    server = HostileGateway()
    yield server
    server.stop()


@pytest.fixture
def learned(redis_url, gateway):
    """One real delivery whose answer announces 20/s and 100,000/min."""
    runtime = Runtime(
        Settings(broker_url=redis_url, api_base_url=gateway.url, api_key=API_KEY, _env_file=None)
    )
    headers = {"X-RateLimit-sec-Limit": "20", "X-RateLimit-min-Limit": "100000"}
    gateway.play(success("wamid.L1", headers))
    try:
        job_id = runtime.producer.enqueue(
            {"to": "905321234567", "type": "text", "text": {"body": "x"}}
        )
        job = runtime.jobs.get(job_id)
        assert runtime.delivery.deliver(job.id, job.gen) is Result.SENT
    finally:
        runtime.close()
    return redis_url


def limits(redis_url, **env):
    code, out, err = run(redis_url, "status", "--json", **env)
    assert code == 0, err
    return json.loads(out)["accounts"]["default"]["limits"]


def test_nothing_learned_shows_the_start_values_or_the_settings(redis_url):
    """No announcement yet: the documented 80/s and 4,800/min, or the rate settings."""
    assert limits(redis_url) == {"sec": 80, "min": 4800, "learned": {"sec": False, "min": False}}
    assert limits(redis_url, rate_per_sec="40") == {
        "sec": 40,
        "min": 4800,
        "learned": {"sec": False, "min": False},
    }


def test_learned_limits_are_shown_under_the_ceilings(learned):
    """Announced 20/s and 100,000/min: shown as learned; a RATE_PER_SEC of 10 caps the first."""
    assert limits(learned) == {"sec": 20, "min": 100000, "learned": {"sec": True, "min": True}}
    assert limits(learned, rate_per_sec="10")["sec"] == 10
    code, out, _ = run(learned, "status")
    assert code == 0
    assert "20/s, 100000/min (learned from the Gateway: sec, min)" in " ".join(out.split())
