"""The shipped alert files on real servers: Debian's Prometheus scrapes a real worker and evaluates
deploy/prometheus/alerts.yml, Debian's Alertmanager runs deploy/alertmanager/alertmanager.yml, and
the worker posts its own alerts to the same Alertmanager. A BILL_001 incident pages once."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.cluster import API_KEY, BIN, Sandbox, start_worker, worker_env
from tests.support.docs import RUNBOOK_PREFIX
from tests.support.processes import free_port, wait_for
from worker.sandbox.server import RunningSandbox, SandboxConfig
from worker.service.runtime import Runtime
from worker.settings import Settings

pytestmark = pytest.mark.alerting

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
# A ServiceMonitor's job name, not compose's: nothing may depend on the job being "msgworker".
JOB = "msgworker-metrics"
RULE = "MsgworkerBillingBreakerOpen"
POSTED = "MsgworkerBilling"


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: apt-get install prometheus prometheus-alertmanager")
    return found


class Server:
    """A server process with its log file, stopped by terminate-then-wait."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self._log = log_path.open("wb")
        self.log_path = log_path
        self.process = subprocess.Popen(  # noqa: S603 - Debian's binaries, fixed arguments
            args, stdout=self._log, stderr=subprocess.STDOUT
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()


def get_json(url: str, **params: str) -> Any:
    try:
        response = httpx.get(url, params=params, timeout=5)
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError):
        return None


@pytest.fixture
def alertmanager(tmp_path) -> Iterator[str]:
    """Debian's Alertmanager on a free port with the repository's config, clustering off."""
    port = free_port()
    server = Server(
        [
            tool("prometheus-alertmanager"),
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--storage.path={tmp_path / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        tmp_path / "alertmanager.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get_json(f"{url}/api/v2/status") is not None, what="Alertmanager up")
        yield url
    finally:
        server.stop()


def rules_for_a_short_test(directory: Path) -> Path:
    """alerts.yml as shipped, but the billing rule fires without its `for: 1m` (promtool's unit
    tests cover the durations); everything else, labels and annotations included, unchanged."""
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule["alert"] == RULE:
                rule["for"] = "0s"
    path = directory / "alerts.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    return path


def start_prometheus(
    directory: Path, metrics_port: int, alertmanager_url: str
) -> tuple[Server, str]:
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_for_a_short_test(directory))],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [alertmanager_url.removeprefix("http://")]}]}
            ]
        },
        "scrape_configs": [
            {"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}
        ],
    }
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    server = Server(
        [
            tool("prometheus"),
            f"--config.file={path}",
            f"--storage.tsdb.path={directory / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        directory / "prometheus.log",
    )
    return server, f"http://127.0.0.1:{port}"


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


def amtool_query(alertmanager_url: str) -> list[str]:
    """`amtool alert query`: what the on-call person sees (inhibited alerts are left out)."""
    done = subprocess.run(  # noqa: S603 - Debian's amtool, fixed arguments
        [tool("amtool"), "alert", "query", "-o", "json", f"--alertmanager.url={alertmanager_url}"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return [alert["labels"]["alertname"] for alert in yaml.safe_load(done.stdout) or []]


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
        prometheus, prometheus_url = start_prometheus(tmp_path, metrics_port, alertmanager)
        runtime = Runtime(Settings(broker_url=redis_url, api_base_url=running.url, _env_file=None))
        try:
            messages = [
                {"to": "905321234567", "type": "text", "text": {"body": f"m{n}"}} for n in range(3)
            ]
            runtime.producer.enqueue_many(messages)

            def both_arrived() -> bool:
                alerts = billing_alerts(alertmanager)
                return RULE in alerts and POSTED in alerts

            wait_for(both_arrived, timeout_s=30, what="the rule's and the worker's billing alerts")
            alerts = billing_alerts(alertmanager)
            posted, rule = alerts[POSTED], alerts[RULE]
            assert posted["labels"]["account"] == rule["labels"]["account"] == "default"
            assert posted["labels"]["code"] == "BILL_001"
            assert posted["status"]["state"] == "active"
            assert rule["status"]["state"] == "suppressed"
            assert rule["status"]["inhibitedBy"] == [posted["fingerprint"]]
            assert rule["annotations"]["runbook_url"].startswith(RUNBOOK_PREFIX)
            assert amtool_query(alertmanager).count(POSTED) == 1
            assert RULE not in amtool_query(alertmanager)

            # The workers are counted by msgworker_build_info under a job that is not "msgworker".
            scraped = get_json(
                f"{prometheus_url}/api/v1/query",
                query=f'count(msgworker_build_info{{job="{JOB}"}})',
            )
            assert scraped["data"]["result"][0]["value"][1] == "1"

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
            prometheus.stop()
            worker.stop()
            sandbox.close()
