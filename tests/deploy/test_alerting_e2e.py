"""The shipped alert files on real servers: Debian's Prometheus scrapes a real worker and evaluates
deploy/prometheus/alerts.yml, Debian's Alertmanager runs deploy/alertmanager/alertmanager.yml, and
the worker posts its own alerts to the same Alertmanager. A BILL_001 incident pages once."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.alerting import (
    amtool_query,
    get_json,
    prometheus_config,
    query,
    rules_firing_at_once,
    running_alertmanager,
    running_prometheus,
)
from tests.support.cluster import API_KEY, BIN, Sandbox, start_worker, worker_env
from tests.support.docs import RUNBOOK_PREFIX
from tests.support.processes import free_port, wait_for
from worker.sandbox.server import RunningSandbox, SandboxConfig
from worker.service.runtime import Runtime
from worker.settings import Settings

pytestmark = pytest.mark.alerting

# A ServiceMonitor's job name, not compose's: nothing may depend on the job being "msgworker".
JOB = "msgworker-metrics"
RULE = "MsgworkerBillingBreakerOpen"
POSTED = "MsgworkerBilling"


@pytest.fixture
def alertmanager(tmp_path) -> Iterator[str]:
    with running_alertmanager(tmp_path) as url:
        yield url


def replay_billing(redis_url: str) -> subprocess.CompletedProcess[str]:
    """`msgworker dlq replay --code BILL_001`, the operator's command after a top-up."""
    return subprocess.run(  # noqa: S603 - our own console script
        [str(BIN / "msgworker"), "dlq", "replay", "--code", "BILL_001", "--json"],
        env=worker_env(redis_url, "http://127.0.0.1:9"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def billing_alerts(alertmanager_url: str) -> dict[str, dict[str, Any]]:
    """The billing alerts Alertmanager holds (active, inhibited or silenced), by alertname."""
    found = get_json(f"{alertmanager_url}/api/v2/alerts") or []
    return {
        alert["labels"]["alertname"]: alert
        for alert in found
        if alert["labels"]["alertname"] in {RULE, POSTED}
    }


def paged(alertmanager_url: str) -> list[str]:
    """The names of the alerts amtool shows."""
    return [alert["labels"]["alertname"] for alert in amtool_query(alertmanager_url)]


def test_a_billing_incident_pages_once_and_resolves_after_the_replay(
    redis_url, alertmanager, tmp_path
):
    """BILL_001: the rule fires and reaches Alertmanager, inhibited by the worker's own alert for
    the same account; amtool shows one alert; after a top-up and a replay both resolve."""
    with RunningSandbox(SandboxConfig(api_keys=(API_KEY,))) as running:
        sandbox = Sandbox(running.url)
        sandbox.configure(balance=0, rate_per_sec=1000, rate_per_min=100_000)
        metrics_port = free_port()
        worker = start_worker(
            worker_env(
                redis_url,
                running.url,
                metrics_port=str(metrics_port),
                alertmanager_url=alertmanager,
                billing_probe_interval_s="1",
            ),
            tmp_path / "worker.log",
            concurrency=2,
        )
        scrape = {"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}
        config = prometheus_config(rules_firing_at_once(tmp_path, RULE), alertmanager, [scrape])
        runtime = Runtime(Settings(broker_url=redis_url, api_base_url=running.url, _env_file=None))
        try:
            with running_prometheus(tmp_path, config) as prometheus_url:
                messages = [
                    {"to": "905321234567", "type": "text", "text": {"body": f"m{n}"}}
                    for n in range(3)
                ]
                runtime.producer.enqueue_many(messages)

                def both_arrived() -> bool:
                    alerts = billing_alerts(alertmanager)
                    return RULE in alerts and POSTED in alerts

                wait_for(
                    both_arrived, timeout_s=30, what="the rule's and the worker's billing alerts"
                )
                alerts = billing_alerts(alertmanager)
                posted, rule = alerts[POSTED], alerts[RULE]
                assert posted["labels"]["account"] == rule["labels"]["account"] == "default"
                assert posted["labels"]["code"] == "BILL_001"
                assert posted["status"]["state"] == "active"
                assert rule["status"]["state"] == "suppressed"
                assert rule["status"]["inhibitedBy"] == [posted["fingerprint"]]
                assert rule["annotations"]["runbook_url"].startswith(RUNBOOK_PREFIX)
                assert paged(alertmanager).count(POSTED) == 1
                assert RULE not in paged(alertmanager)

                # The workers are counted by msgworker_build_info under a job that is not "msgworker".
                [scraped] = query(prometheus_url, f'count(msgworker_build_info{{job="{JOB}"}})')
                assert scraped["value"][1] == "1"

                sandbox.post("/sandbox/topup", {"amount": 10.0})
                replay = replay_billing(redis_url)
                assert replay.returncode == 0, replay.stderr
                wait_for(
                    lambda: billing_alerts(alertmanager) == {},
                    timeout_s=30,
                    what="both billing alerts resolved",
                )
                wait_for(lambda: sandbox.stats()["accepted"] == 3, timeout_s=30, what="the drain")
        finally:
            runtime.close()
            worker.stop()
            sandbox.close()
