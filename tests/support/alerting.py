"""Debian's Prometheus and Alertmanager on free ports, run with the repository's files in deploy/,
and the questions the alerting tests ask them (their HTTP APIs, amtool)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.processes import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
# Short enough that a test sees a scrape and a rule evaluation within a second or two.
INTERVAL = "1s"


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

    def answers(self, url: str) -> bool:
        """Whether the server answers ``url`` (an exit before that fails, showing its log)."""
        if self.process.poll() is not None:
            log = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.process.args[0]} exited:\n{log}")
        return get_json(url) is not None


@contextmanager
def serving(server: Server, url: str, probe: str) -> Iterator[str]:
    """``url`` once the server answers ``probe`` there; the server stopped on leaving."""
    try:
        wait_for(lambda: server.answers(url + probe), what=f"{url}{probe} answering")
        yield url
    finally:
        server.stop()


def get_json(url: str, **params: str) -> Any:
    try:
        response = httpx.get(url, params=params, timeout=5)
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError):
        return None


@contextmanager
def running_alertmanager(directory: Path) -> Iterator[str]:
    """Debian's Alertmanager with deploy/alertmanager/alertmanager.yml, clustering off; its URL."""
    port = free_port()
    server = Server(
        [
            tool("prometheus-alertmanager"),
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--storage.path={directory / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        directory / "alertmanager.log",
    )
    with serving(server, f"http://127.0.0.1:{port}", "/api/v2/status") as url:
        yield url


def rules_firing_at_once(directory: Path, alert: str) -> Path:
    """deploy/prometheus/alerts.yml as shipped but for one change: ``alert`` fires without its
    ``for:`` wait, which promtool's unit tests (alerts_test.yml) cover. Its expression, labels
    and annotations, and every other rule, are left as they are."""
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    found = [rule for group in rules["groups"] for rule in group["rules"] if rule["alert"] == alert]
    assert found, f"no rule {alert} in {RULES}"
    for rule in found:
        rule["for"] = "0s"
    path = directory / "alerts.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    return path


def prometheus_config(
    rules: Path, alertmanager_url: str, scrape_configs: list[dict[str, Any]]
) -> dict[str, Any]:
    """A Prometheus config evaluating ``rules`` every second, alerting ``alertmanager_url``."""
    return {
        "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
        "rule_files": [str(rules)],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [alertmanager_url.removeprefix("http://")]}]}
            ]
        },
        "scrape_configs": scrape_configs,
    }


def shipped_scrape_configs(addresses: dict[str, str]) -> list[dict[str, Any]]:
    """deploy/prometheus/prometheus.yml's scrape jobs as shipped (names, paths), each target
    (compose's ``worker:9808``, ``serve:8080``) replaced by where the test runs it."""
    jobs: list[dict[str, Any]] = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))[
        "scrape_configs"
    ]
    for job in jobs:
        for static in job["static_configs"]:
            unknown = set(static["targets"]) - set(addresses)
            assert not unknown, f"{PROMETHEUS_CONFIG} scrapes {unknown}: say where the test runs it"
            static["targets"] = [addresses[target] for target in static["targets"]]
    return jobs


@contextmanager
def running_prometheus(directory: Path, config: dict[str, Any]) -> Iterator[str]:
    """Debian's Prometheus with ``config``, its data in ``directory``; its URL once ready."""
    port = free_port()
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
    with serving(server, f"http://127.0.0.1:{port}", "/api/v1/status/buildinfo") as url:
        yield url


def query(prometheus_url: str, promql: str) -> list[dict[str, Any]]:
    """An instant query's result vector (empty while Prometheus does not answer)."""
    found = get_json(f"{prometheus_url}/api/v1/query", query=promql)
    return list(found["data"]["result"]) if found else []


def amtool_query(alertmanager_url: str, *matchers: str) -> list[dict[str, Any]]:
    """`amtool alert query`: what the on-call person sees (inhibited alerts are left out)."""
    done = subprocess.run(  # noqa: S603 - Debian's amtool, fixed arguments
        [
            tool("amtool"),
            "alert",
            "query",
            "-o",
            "json",
            f"--alertmanager.url={alertmanager_url}",
            *matchers,
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return list(yaml.safe_load(done.stdout) or [])
