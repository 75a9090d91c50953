"""The README's first command: `msgworker demo` runs the whole product and cleans up."""

import os
import subprocess

import pytest

from tests.support.cluster import BIN
from tests.support.processes import free_port

pytestmark = pytest.mark.e2e


def test_demo_runs_every_path_with_a_private_redis_and_sends_nothing_twice():
    """With no Redis reachable the demo starts its own, meets every path (two brands among them:
    one halted by the Gateway heals itself while the other sends), and reports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSGWORKER_")}
    env["MSGWORKER_BROKER_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    done = subprocess.run(  # noqa: S603
        [str(BIN / "msgworker"), "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "a private redis-server" in out
    assert "breaker open" in out
    assert "halted (AUTH_001)" in out
    assert "sent twice: 0" in out
    assert "3 jobs delivered, then read" in out
    assert "undelivered" in out  # parked, shown by `dlq list`
    assert "WA_131026" in out
    assert "dead letters: {'GW_001': 1}" in out
    assert 'msgworker_api_responses_total{account="default",code="RATE_001"' in out
    assert "brand_a halted by the Gateway (AUTH_001), 10 held; brand_b sent 40 meanwhile" in out
    assert "brand_a resumed by itself" in out
    assert "brand_a's key: {'OK': 11}" in out  # 10 jobs, each once, and the probe that healed it
    assert 'msgworker_jobs_total{account="brand_b",outcome="sent"} 40.0' in out
    assert "everything the demo started is stopped" in out
