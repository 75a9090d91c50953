"""Delivery alerting on real servers, wired as shipped: Debian's Prometheus scrapes a real worker
and a real `msgworker serve` with deploy/prometheus/prometheus.yml's scrape jobs and evaluates
deploy/prometheus/alerts.yml; Debian's Alertmanager runs deploy/alertmanager/alertmanager.yml.

The worker sends through the Gateway stand-in (the sandbox); the test then posts each send's
`failed` status webhook (WhatsApp error 131026) to serve in the sandbox's shape, with the webhook
secret as the Gateway sends it. It posts once the worker has recorded the send, as WhatsApp's
verdict comes after the Gateway's answer: a status that comes before is kept and applied by the
worker when it records the send, and no metric counts it there. One Prometheus, Alertmanager,
worker and serve serve the whole module."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from tests.support.alerting import (
    PROMETHEUS_CONFIG,
    amtool_query,
    get_json,
    prometheus_config,
    query,
    rules_firing_at_once,
    running_alertmanager,
    running_prometheus,
    shipped_scrape_configs,
)
from tests.support.cluster import API_KEY, start_worker, worker_env
from tests.support.docs import RUNBOOK_PREFIX
from tests.support.processes import free_port, wait_for
from tests.support.serve import Service
from worker.sandbox.server import RunningSandbox, SandboxConfig
from worker.sandbox.webhooks import status_body
from worker.service.runtime import Runtime
from worker.settings import Settings

pytestmark = pytest.mark.alerting

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "msgworker.json"
ALERT = "MsgworkerDeliveryFailuresHigh"
SECRET = "whsec_alerting_0123456789abcdef"  # noqa: S105 - a test secret
RECIPIENT = "905329999999"
# The rule asks for at least 20 failures in 10 minutes (and over 5% of final statuses).
SPIKE = 24
# Where compose runs each component, as the shipped scrape jobs name it.
TARGETS = {"worker": "worker:9808", "serve": "serve:8080"}


@dataclass(frozen=True)
class Stack:
    prometheus: str
    alertmanager: str
    serve: str
    runtime: Runtime
    jobs: dict[str, str | None]  # the shipped scrape job of each component


def shipped_jobs() -> dict[str, str | None]:
    """The shipped scrape job of each component (None: not scraped)."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    by_target = {
        target: job["job_name"]
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    return {component: by_target.get(target) for component, target in TARGETS.items()}


@pytest.fixture(scope="module")
def stack(redis_server, tmp_path_factory) -> Iterator[Stack]:
    """serve with webhooks on, the sandbox posting to it, a worker exporting metrics, Prometheus
    scraping both as deploy/ ships it, Alertmanager; all stopped after the module."""
    directory = tmp_path_factory.mktemp("delivery-alerting")
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    with ExitStack() as stop:
        service = Service(directory, broker_url=redis_server.url, webhook_secret=SECRET).start()
        stop.callback(service.stop)
        sandbox = stop.enter_context(
            RunningSandbox(
                SandboxConfig(
                    api_keys=(API_KEY,),
                    rate_per_sec=1000,
                    rate_per_min=100_000,
                )
            )
        )
        metrics_port = free_port()
        env = worker_env(
            redis_server.url,
            sandbox.url,
            metrics_host="127.0.0.1",
            metrics_port=str(metrics_port),
        )
        worker = start_worker(env, directory / "worker.log", concurrency=4)
        stop.callback(worker.stop)
        alertmanager = stop.enter_context(running_alertmanager(directory))
        addresses = {
            TARGETS["worker"]: f"127.0.0.1:{metrics_port}",
            TARGETS["serve"]: f"127.0.0.1:{service.port}",
        }
        config = prometheus_config(
            rules_firing_at_once(directory, ALERT), alertmanager, shipped_scrape_configs(addresses)
        )
        prometheus = stop.enter_context(running_prometheus(directory, config))
        runtime = Runtime(
            Settings(broker_url=redis_server.url, api_base_url=sandbox.url, _env_file=None)
        )
        stop.callback(runtime.close)
        yield Stack(prometheus, alertmanager, service.url, runtime, shipped_jobs())


def targets_up(prometheus_url: str) -> dict[str, str]:
    """The value of `up` by scrape job."""
    return {sample["metric"]["job"]: sample["value"][1] for sample in query(prometheus_url, "up")}


def failures_scraped(prometheus_url: str) -> float:
    """Failed deliveries as Prometheus last scraped them from serve."""
    found = query(prometheus_url, "sum(msgworker_delivery_failures_total)")
    return float(found[0]["value"][1]) if found else 0.0


def fail_deliveries(stack: Stack, count: int) -> None:
    """Send ``count`` messages, then post each one's `failed` status to serve's webhook."""
    ids = stack.runtime.producer.enqueue_many(
        [{"to": RECIPIENT, "type": "text", "text": {"body": f"m{n}"}} for n in range(count)]
    )

    def wamids() -> list[str]:
        jobs = [stack.runtime.jobs.get(job_id) for job_id in ids]
        recorded = [job.wamid for job in jobs if job is not None and job.wamid]
        return recorded if len(recorded) == count else []

    for wamid in wait_for(wamids, timeout_s=30, what=f"{count} sends recorded"):
        answer = httpx.post(
            f"{stack.serve}/webhooks/gateway",
            json=status_body(wamid, "failed", RECIPIENT, time.time()),
            headers={"Authorization": f"Bearer {SECRET}"},
            timeout=10,
        )
        assert answer.json() == {"status": "ok"}


def rule_alerts(prometheus_url: str) -> list[dict[str, Any]]:
    found = get_json(f"{prometheus_url}/api/v1/alerts")
    alerts = found["data"]["alerts"] if found else []
    return [alert for alert in alerts if alert["labels"]["alertname"] == ALERT]


def test_prometheus_scrapes_the_worker_and_serve_as_shipped(stack):
    """Both of deploy/prometheus/prometheus.yml's jobs, worker and serve, are up, and each
    exports msgworker_build_info with its own component."""
    assert None not in stack.jobs.values(), f"{PROMETHEUS_CONFIG} scrapes only {stack.jobs}"
    wait_for(
        lambda: targets_up(stack.prometheus) == dict.fromkeys(stack.jobs.values(), "1"),
        timeout_s=30,
        what="both scrape targets up",
    )
    components = {
        sample["metric"]["job"]: sample["metric"]["component"]
        for sample in query(stack.prometheus, "msgworker_build_info")
    }
    assert components == {job: component for component, job in stack.jobs.items()}


def variable_query(name: str) -> re.Match[str]:
    """The dashboard's variable ``name``: its label_values(selector, label) query."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    [variable] = [var for var in dashboard["templating"]["list"] if var["name"] == name]
    found = re.fullmatch(r"label_values\((?P<selector>.+),\s*(?P<label>\w+)\)", variable["query"])
    assert found, variable["query"]
    return found


def offered(prometheus_url: str, variable: re.Match[str], **chosen: str) -> set[str]:
    """What a label_values() variable offers, asked as Grafana asks (the label values API),
    with the other variables' ``chosen`` values in its selector."""
    selector = variable["selector"]
    for name, value in chosen.items():
        selector = selector.replace(f"${name}", value)
    answer = get_json(
        f"{prometheus_url}/api/v1/label/{variable['label']}/values", **{"match[]": selector}
    )
    return set(answer["data"]) if answer else set()


def test_the_dashboards_job_variable_offers_both_components(stack):
    """The Grafana dashboard's `$job` variable offers the worker's job and serve's: the
    delivery panels (serve's metrics) are not left empty."""
    job = variable_query("job")
    wait_for(
        lambda: offered(stack.prometheus, job) == set(stack.jobs.values()),
        timeout_s=30,
        what="both jobs offered",
    )


def test_the_dashboards_account_variable_offers_the_accounts_of_either_job(stack):
    """With only the worker's job or only serve's chosen, `$account` offers the account: the
    delivery panels, which serve fills, filter by it too."""
    fail_deliveries(stack, 1)
    account = variable_query("account")
    for component, job in stack.jobs.items():
        wait_for(
            lambda job=job: offered(stack.prometheus, account, job=job) == {"default"},
            timeout_s=30,
            what=f"the default account offered for {component}'s job alone",
        )


def test_failed_deliveries_fire_the_alert_in_prometheus_and_alertmanager(stack):
    """A spike of `failed` delivery webhooks for the default account makes
    MsgworkerDeliveryFailuresHigh fire in Prometheus and shows it in `amtool alert query`.

    The rule is the shipped one but for its `for: 10m` wait, cut to nothing here
    (rules_firing_at_once; alerts_test.yml proves the wait with promtool). A counter's first
    scrape is its start, as in production: one failure first creates serve's series, and the
    spike after it is the increase the rule's 10-minute windows see."""
    before = failures_scraped(stack.prometheus)
    fail_deliveries(stack, 1)
    wait_for(
        lambda: failures_scraped(stack.prometheus) == before + 1,
        timeout_s=30,
        what="one failure scraped",
    )
    assert rule_alerts(stack.prometheus) == [], "a failure or two is under the rule's threshold"

    fail_deliveries(stack, SPIKE)
    wait_for(
        lambda: [alert["state"] for alert in rule_alerts(stack.prometheus)] == ["firing"],
        timeout_s=30,
        what=f"{ALERT} firing in Prometheus",
    )
    wait_for(
        lambda: failures_scraped(stack.prometheus) == before + 1 + SPIKE,
        timeout_s=30,
        what="every failure counted once",
    )
    paged = wait_for(
        lambda: amtool_query(stack.alertmanager, f"alertname={ALERT}"),
        timeout_s=30,
        what=f"{ALERT} in Alertmanager",
    )
    [alert] = paged
    assert alert["labels"] == {
        "alertname": ALERT,
        "account": "default",
        "severity": "warning",
        "service": "msgworker",
    }
    assert alert["annotations"]["runbook_url"].startswith(RUNBOOK_PREFIX)
    assert alert["status"]["state"] == "active"
