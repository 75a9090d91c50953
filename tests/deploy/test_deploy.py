"""Deployment files: the image, Procfile, compose stack and Kubernetes manifests lint clean and agree.

Each validator runs as a subprocess from the virtualenv (the dev extras install them): hadolint,
docker-compose (config only: no Docker engine is needed), kubernetes-validate and yamllint.
KEDA's ScaledObject has no schema in kubernetes-validate, so it is checked against one written
here from KEDA's documented fields; the Prometheus Operator's ServiceMonitor and PrometheusRule
neither, so they are checked against the Operator's own CRD schemas, vendored in tests/deploy/schemas/.
"""

from __future__ import annotations

import copy
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from worker.settings import Settings
from worker.urls import parse_sentinel

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_SENTINEL = DEPLOY / "compose.sentinel.yaml"
COMPOSE = DEPLOY / "compose.yaml"
BASE = K8S / "base"
COMPONENTS = K8S / "components"
CORE_MANIFESTS = ("configmap.yaml", "deployment.yaml", "service.yaml", "pdb.yaml")
SCALED_OBJECT = COMPONENTS / "keda" / "scaledobject.yaml"
SERVICE_MONITORS = COMPONENTS / "monitoring" / "servicemonitor.yaml"
PROMETHEUS_RULE = COMPONENTS / "monitoring" / "prometheusrule.yaml"
RULE_GENERATOR = COMPONENTS / "monitoring" / "prometheusrule.py"
ALERT_RULES = DEPLOY / "prometheus" / "alerts.yml"
# The Prometheus Operator's CRDs, vendored unchanged (tests/deploy/schemas/prometheus-operator/README.md).
OPERATOR_CRDS = Path(__file__).resolve().parent / "schemas" / "prometheus-operator"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
METRICS_PORT = 9808
SERVE_PORT = 8080
ALERTMANAGER_PORT = 9093
# A send in flight lasts at most 2 x HTTP_TIMEOUT_S + 1 s (worker/service/runtime.py's lease budget);
# the grace period must add at least 10 s of margin to that.
WORST_SEND_EXTRA_S = 11


def tool(name: str) -> Path:
    """A validator installed next to this interpreter (the dev extras)."""
    path = Path(sys.executable).with_name(name)
    assert path.exists(), f"{name} is missing: pip install -e '.[dev]'"
    return path


def run(*argv: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own validators, fixed arguments
        [str(a) for a in argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def manifest(name: str) -> dict[str, Any]:
    """A manifest of the base (deploy/k8s/base), as written (overlays render it: test_kustomize)."""
    return load_yaml(BASE / name)


def service_monitors() -> dict[str, dict[str, Any]]:
    """The ServiceMonitors (the workers' and serve's), by name."""
    documents = yaml.safe_load_all(SERVICE_MONITORS.read_text(encoding="utf-8"))
    return {doc["metadata"]["name"]: doc for doc in documents}


# ---------------------------------------------------------------- Dockerfile


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per logical line: continuations joined, comments dropped."""
    result = []
    for raw in re.sub(r"\\\n", " ", text).splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if keyword == "FROM":
            found.append([])
        found[-1].append((keyword, rest))
    return found


def only(stage: list[tuple[str, str]], keyword: str) -> str:
    values = [rest for kw, rest in stage if kw == keyword]
    assert len(values) == 1, f"expected one {keyword}, found {values}"
    return values[0]


def healthcheck_command() -> list[str]:
    check = only(stages()[-1], "HEALTHCHECK")
    match = re.fullmatch(r"((?:--\S+\s+)*)CMD\s+(\[.*\])", check)
    assert match, f"HEALTHCHECK is not in exec form: {check}"
    return json.loads(match.group(2))


@pytest.mark.processes
def test_hadolint_reports_nothing():
    """hadolint finds no issue of any level (style included) in the Dockerfile."""
    home = {"HOME": str(ROOT / ".no-such-home"), "XDG_CONFIG_HOME": str(ROOT / ".no-such-home")}
    done = run(tool("hadolint"), "--no-color", "-f", "json", "-t", "style", DOCKERFILE, env=home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == []


def test_image_is_multi_stage_on_pinned_slim_python():
    """A build stage makes the venv; the final stage is python:3.11-slim, pinned by tag, with no build tools."""
    found = stages()
    assert len(found) >= 2
    assert re.fullmatch(r"\S+ AS build", only(found[0], "FROM"), flags=re.IGNORECASE)
    for stage in found:
        image = only(stage, "FROM").split()[0]
        assert re.fullmatch(r"python:3\.11-slim[\w.-]*", image), image
    final = found[-1]
    assert only(final, "FROM").split() == [only(final, "FROM").split()[0]], "final stage unnamed"
    assert any(kw == "COPY" and rest.startswith("--from=build ") for kw, rest in final)
    installs = " ".join(rest for kw, rest in final if kw == "RUN")
    for build_tool in ("gcc", "build-essential", "apt-get install", "pip install"):
        assert build_tool not in installs


def test_image_installs_the_locked_dependencies_hash_checked():
    """The build stage installs requirements.lock with --require-hashes, then only our wheel."""
    build = stages()[0]
    copied = [rest.split() for kw, rest in build if kw == "COPY"]
    assert ["requirements.lock", "./"] in copied
    installs = [rest for kw, rest in build if kw == "RUN" and "pip install" in rest]
    assert any("--require-hashes -r requirements.lock" in rest for rest in installs)
    ours = [rest for rest in installs if "/wheels/" in rest]
    assert ours
    assert all(
        "--no-deps" in rest.split("/wheels/")[0].rsplit("pip install", 1)[1] for rest in ours
    )
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "requirements.lock" not in ignored


def test_final_stage_runs_msgworker_as_a_numeric_user():
    """The final stage: numeric USER, exec-form ENTRYPOINT msgworker and CMD worker, port, signal."""
    final = stages()[-1]
    assert re.fullmatch(r"[1-9]\d*(:\d+)?", only(final, "USER"))
    assert json.loads(only(final, "ENTRYPOINT")) == ["msgworker"]
    assert json.loads(only(final, "CMD")) == ["worker"]
    assert only(final, "EXPOSE") == f"{METRICS_PORT} {SERVE_PORT}"
    assert only(final, "STOPSIGNAL") == "SIGTERM"
    copied = [rest.split() for kw, rest in final if kw == "COPY" and not rest.startswith("--")]
    assert ["config", "./config"] in copied
    assert only(final, "WORKDIR") == "/app"


def test_healthcheck_fetches_metrics_without_celery():
    """The HEALTHCHECK is an exec-form urllib GET of /metrics on 127.0.0.1, never a Celery call."""
    check = only(stages()[-1], "HEALTHCHECK")
    assert "celery" not in check.lower()
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    assert "urllib.request" in command[2]
    assert "http://127.0.0.1:" in command[2]
    assert "/metrics" in command[2]


@pytest.fixture
def metrics_server() -> Iterator[int]:
    """An HTTP server answering 200 on /metrics and 404 elsewhere, on a free port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            found = self.path == "/metrics"
            self.send_response(200 if found else 404)
            self.end_headers()
            self.wfile.write(b"msgworker_queue_depth 0.0\n" if found else b"")

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.processes
def test_healthcheck_passes_when_metrics_answer_and_fails_otherwise(metrics_server):
    """The HEALTHCHECK one-liner exits 0 against a live /metrics and non-zero with nothing listening."""
    code = healthcheck_command()[2]
    alive = run(sys.executable, "-c", code, env={"MSGWORKER_METRICS_PORT": str(metrics_server)})
    assert alive.returncode == 0, alive.stderr
    dead = run(sys.executable, "-c", code, env={"MSGWORKER_METRICS_PORT": str(free_port())})
    assert dead.returncode != 0


def test_dockerignore_keeps_local_state_out_but_not_the_sources():
    """.dockerignore excludes the venv, git, caches and .env, and none of what the build copies."""
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", ".env", ".pytest_cache", ".mypy_cache", "**/__pycache__"} <= patterns
    for keyword, rest in stages()[0]:
        if keyword == "COPY":
            for source in rest.split()[:-1]:
                assert source not in patterns


def test_procfile_runs_the_worker_and_the_sandbox():
    """The Procfile has a worker, a sandbox and the HTTP API on $PORT, all interfaces."""
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    assert lines == [
        "worker: msgworker worker",
        "sandbox: msgworker sandbox --host 0.0.0.0 --port ${PORT:-8099}",
        "web: msgworker serve --host 0.0.0.0 --port ${PORT:-8080}",
    ]


# ---------------------------------------------------------------- compose


def compose_model() -> dict[str, Any]:
    done = run(tool("docker-compose"), "-f", COMPOSE, "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def settings_from(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as the worker reads them from exactly this environment (no .env file)."""
    for name in list(os.environ):
        if name.startswith("MSGWORKER_"):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.processes
def test_compose_file_is_valid():
    """docker-compose config -q accepts deploy/compose.yaml (schema, interpolation, paths)."""
    done = run(tool("docker-compose"), "-f", COMPOSE, "config", "-q")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


@pytest.mark.processes
def test_compose_worker_uses_redis_and_a_key_the_sandbox_accepts(monkeypatch):
    """The compose worker's broker is the redis service and its key is one the sandbox accepts."""
    services = compose_model()["services"]
    environment = services["worker"]["environment"]
    broker = urlsplit(environment["MSGWORKER_BROKER_URL"])
    assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379)
    assert services["redis"]["image"] == "redis:7-alpine"
    assert services["redis"]["command"] == ["redis-server", "--appendonly", "yes"]
    assert services["worker"]["depends_on"]["redis"]["condition"] == "service_healthy"

    sandbox = services["sandbox"]["command"]
    listen = ["sandbox", "--host", "0.0.0.0", "--port", "8099"]  # noqa: S104 - in its container
    assert sandbox[:5] == listen
    accepted = [sandbox[i + 1] for i, arg in enumerate(sandbox) if arg == "--api-key"]
    assert environment["MSGWORKER_API_KEY"] in (accepted or ["sk_sandbox"])
    gateway = urlsplit(environment["MSGWORKER_API_BASE_URL"])
    assert (gateway.hostname, gateway.port) == ("sandbox", 8099)

    settings = settings_from(environment, monkeypatch)
    assert settings.sandbox is True
    assert settings.metrics_port == METRICS_PORT


@pytest.mark.processes
def test_compose_sentinel_variant_runs_on_a_primary_two_replicas_and_three_sentinels(monkeypatch):
    """compose.sentinel.yaml over compose.yaml: valid; the worker and serve reach the primary
    through three sentinels and wait for one replica."""
    done = run(
        tool("docker-compose"), "-f", COMPOSE, "-f", COMPOSE_SENTINEL, "config", "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    assert {"redis", "redis-replica-1", "redis-replica-2"} <= set(services)
    assert {"sentinel-1", "sentinel-2", "sentinel-3"} <= set(services)
    for name in ("redis-replica-1", "redis-replica-2"):
        assert services[name]["command"][3:6] == ["--replicaof", "redis", "6379"]
    for name in ("worker", "serve"):
        settings = settings_from(services[name]["environment"], monkeypatch)
        where = parse_sentinel(settings.state_url)
        assert [host for host, _ in where.sentinels] == ["sentinel-1", "sentinel-2", "sentinel-3"]
        assert settings.broker_url == settings.state_url
        assert settings.redis_min_replicas == 1


@pytest.mark.processes
def test_compose_monitoring_is_wired_to_the_worker_and_serve():
    """Prometheus scrapes worker:9808 and serve:8080 (whose /metrics counts the deliveries) with
    alerts.yml beside its config; Grafana loads the dashboard."""
    services = compose_model()["services"]
    mounts = {
        name: {m["target"]: m["source"] for m in services[name]["volumes"] if m["type"] == "bind"}
        for name in ("prometheus", "grafana")
    }
    config_path = mounts["prometheus"]["/etc/prometheus/prometheus.yml"]
    assert Path(config_path) == DEPLOY / "prometheus" / "prometheus.yml"
    assert Path(mounts["prometheus"]["/etc/prometheus/alerts.yml"]) == (
        DEPLOY / "prometheus" / "alerts.yml"
    )
    config = load_yaml(Path(config_path))
    assert config["global"]["scrape_interval"] == "15s"
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job["static_configs"] for job in config["scrape_configs"]}
    assert jobs == {
        "msgworker": [{"targets": [f"worker:{METRICS_PORT}"]}],
        "msgworker-serve": [{"targets": [f"serve:{SERVE_PORT}"]}],
    }
    serve = services["serve"]
    assert serve["environment"]["MSGWORKER_CONSOLE_PASSWORD"], "the console is on in compose"

    provisioning = Path(mounts["grafana"]["/etc/grafana/provisioning"])
    assert provisioning == DEPLOY / "grafana" / "provisioning"
    [datasource] = load_yaml(provisioning / "datasources" / "prometheus.yaml")["datasources"]
    assert (datasource["type"], datasource["url"]) == ("prometheus", "http://prometheus:9090")
    [provider] = load_yaml(provisioning / "dashboards" / "msgworker.yaml")["providers"]
    dashboards = {
        target: source for target, source in mounts["grafana"].items() if source.endswith(".json")
    }
    assert dashboards == {
        f"{provider['options']['path']}/msgworker.json": str(DEPLOY / "grafana" / "msgworker.json")
    }


@pytest.mark.processes
def test_compose_alerts_reach_alertmanager(monkeypatch):
    """Alertmanager runs with the repository's config; Prometheus and the worker both send to it."""
    services = compose_model()["services"]
    alertmanager = services["alertmanager"]
    assert alertmanager["image"].startswith("prom/alertmanager:v")
    mounts = {m["target"]: m["source"] for m in alertmanager["volumes"] if m["type"] == "bind"}
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in alertmanager["command"]
    assert Path(mounts["/etc/alertmanager/alertmanager.yml"]) == ALERTMANAGER_CONFIG

    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    [target] = [
        target
        for manager in config["alerting"]["alertmanagers"]
        for static in manager["static_configs"]
        for target in static["targets"]
    ]
    assert target == f"alertmanager:{ALERTMANAGER_PORT}"
    assert "alertmanager" in services["prometheus"]["depends_on"]

    environment = services["worker"]["environment"]
    settings = settings_from(environment, monkeypatch)
    posted = urlsplit(str(settings.alertmanager_url))
    assert (posted.hostname, posted.port) == ("alertmanager", ALERTMANAGER_PORT)


def amtool() -> str:
    found = shutil.which("amtool")
    if found is None:
        pytest.fail("amtool is missing: apt-get install prometheus-alertmanager (it ships amtool)")
    return found


@pytest.mark.processes
def test_alertmanager_config_passes_amtool():
    """amtool check-config accepts alertmanager.yml, with its receivers and inhibit rules."""
    done = run(amtool(), "check-config", ALERTMANAGER_CONFIG)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
    assert "2 inhibit rules" in done.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (("alertname=MsgworkerHalted", "severity=critical", "account=default"), "msgworker-oncall"),
        (("alertname=MsgworkerBilling", "severity=critical", "account=acme"), "msgworker-oncall"),
        (("alertname=MsgworkerDLQGrowing", "severity=warning"), "msgworker-tickets"),
        (("alertname=MsgworkerRetriesExhausted", "severity=warning"), "msgworker-tickets"),
        (("alertname=SomethingElse",), "msgworker-oncall"),
    ],
)
@pytest.mark.processes
def test_alertmanager_routes_critical_to_the_pager_and_warnings_to_tickets(labels, receiver):
    """amtool config routes test: critical (and unknown) alerts page, warnings go to tickets."""
    done = run(
        amtool(), "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == [receiver]


@pytest.mark.processes
def test_prometheus_config_passes_promtool():
    """promtool check config accepts prometheus.yml and the alerts.yml it loads."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not on PATH (Debian: apt-get install prometheus; ./run test does)"
    done = run(promtool, "check", "config", DEPLOY / "prometheus" / "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 rule files found" in done.stdout


# ---------------------------------------------------------------- Kubernetes


@pytest.mark.processes
def test_core_manifests_pass_strict_kubernetes_validation():
    """kubernetes-validate --strict validates every core manifest against a real schema."""
    files = [BASE / name for name in CORE_MANIFESTS]
    done = run(tool("kubernetes-validate"), "--strict", *files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARN" not in done.stdout, "a manifest was skipped, not validated"
    assert done.stdout.count(" passed for resource ") == len(files)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (SCALED_OBJECT, "ScaledObject"),
        (SERVICE_MONITORS, "ServiceMonitor"),
        (PROMETHEUS_RULE, "PrometheusRule"),
    ],
)
@pytest.mark.processes
def test_kubernetes_validate_has_no_schema_for_custom_resources(path, kind):
    """kubernetes-validate only warns about the custom resources (no CRD schema): checked below."""
    done = run(tool("kubernetes-validate"), "--strict", path)
    # If this starts failing, the tool has learned the kind: move the file to CORE_MANIFESTS.
    assert done.returncode == 0
    assert f"Couldn't find schema for kind {kind}" in done.stdout


def test_configmap_holds_every_non_secret_setting(monkeypatch):
    """The ConfigMap sets every MSGWORKER_ setting but the key (and the .env path: a pod reads its
    environment), and the worker accepts the values."""
    data = manifest("configmap.yaml")["data"]
    every = {f"MSGWORKER_{name.upper()}" for name in Settings.model_fields}
    secrets = {
        "MSGWORKER_API_KEY",
        "MSGWORKER_INGEST_TOKENS",
        "MSGWORKER_CONSOLE_PASSWORD",
        "MSGWORKER_WEBHOOK_SECRET",
        "MSGWORKER_REDIS_SENTINEL_PASSWORD",
    }
    assert set(data) == every - secrets - {"MSGWORKER_ENV_FILE"}
    assert all(isinstance(value, str) for value in data.values())
    settings = settings_from(data, monkeypatch)
    assert settings.metrics_port == METRICS_PORT
    assert settings.sandbox is False


def worker_container() -> dict[str, Any]:
    [container] = manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    return container


def test_grace_period_outlasts_the_worst_send_in_flight():
    """terminationGracePeriodSeconds exceeds 2 x HTTP_TIMEOUT_S + 11 s, for the configured timeout."""
    grace = manifest("deployment.yaml")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    timeout_s = float(manifest("configmap.yaml")["data"]["MSGWORKER_HTTP_TIMEOUT_S"])
    assert grace >= 2 * 10 + WORST_SEND_EXTRA_S
    assert grace >= 2 * timeout_s + WORST_SEND_EXTRA_S


def test_worker_pod_is_non_root_read_only_with_a_writable_tmp():
    """The pod runs as 10001, read-only root, /tmp an emptyDir holding the multiprocess metrics."""
    pod = manifest("deployment.yaml")["spec"]["template"]["spec"]
    container = worker_container()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    [mount] = container["volumeMounts"]
    [volume] = pod["volumes"]
    assert (mount["mountPath"], mount["name"]) == ("/tmp", volume["name"])  # noqa: S108 - an emptyDir
    assert "emptyDir" in volume
    env = {item["name"]: item["value"] for item in container["env"]}
    # A subdirectory: msgworker removes and re-creates it, which a mount point would refuse.
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")  # noqa: S108 - the pod's own emptyDir


def test_worker_reads_the_configmap_and_secret_and_probes_metrics():
    """The container takes env from both objects, names port 9808 metrics and probes /metrics."""
    container = worker_container()
    assert container["args"] == ["worker"]
    sources = [next(iter(source.items())) for source in container["envFrom"]]
    assert sources == [
        ("configMapRef", {"name": manifest("configmap.yaml")["metadata"]["name"]}),
        ("secretRef", {"name": "msgworker-secret"}),
    ]
    assert container["ports"] == [
        {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}
    ]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert set(container["resources"]) == {"requests", "limits"}


def test_service_selects_the_worker_pods_on_the_metrics_port():
    """The ClusterIP Service selects the Deployment's pods and exposes metrics on 9808."""
    service = manifest("service.yaml")
    deployment = manifest("deployment.yaml")
    assert service["spec"]["type"] == "ClusterIP"
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert service["metadata"]["labels"]["app.kubernetes.io/name"] == "msgworker"


# KEDA v2 ScaledObject (keda.sh/v1alpha1), from https://keda.sh/docs/latest/reference/scaledobject-spec/
# and the Prometheus scaler page: only documented fields, trigger metadata values are strings.
_SCALING_RULES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "stabilizationWindowSeconds": {"type": "integer", "minimum": 0, "maximum": 3600},
        "selectPolicy": {"enum": ["Max", "Min", "Disabled"]},
        "policies": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["type", "value", "periodSeconds"],
                "properties": {
                    "type": {"enum": ["Pods", "Percent"]},
                    "value": {"type": "integer", "minimum": 1},
                    "periodSeconds": {"type": "integer", "minimum": 1, "maximum": 1800},
                },
            },
        },
    },
}
_NUMBER_STRING = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}
_BOOL_STRING = {"enum": ["true", "false"]}
_PROMETHEUS_METADATA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["serverAddress", "query", "threshold"],
    "properties": {
        "serverAddress": {"type": "string", "pattern": r"^https?://"},
        "query": {"type": "string", "minLength": 1},
        "queryParameters": {"type": "string"},
        "threshold": _NUMBER_STRING,
        "activationThreshold": _NUMBER_STRING,
        "namespace": {"type": "string"},
        "customHeaders": {"type": "string"},
        "ignoreNullValues": _BOOL_STRING,
        "unsafeSsl": _BOOL_STRING,
        "timeout": {"type": "string"},
        "authModes": {"type": "string"},
    },
}
SCALED_OBJECT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "additionalProperties": False,
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": {"type": "string", "minLength": 1},
                        "envSourceContainerName": {"type": "string"},
                    },
                },
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "initialCooldownPeriod": {"type": "integer", "minimum": 0},
                "idleReplicaCount": {"type": "integer", "minimum": 0},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "fallback": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["failureThreshold", "replicas"],
                    "properties": {
                        "failureThreshold": {"type": "integer", "minimum": 1},
                        "replicas": {"type": "integer", "minimum": 0},
                        "behavior": {
                            "enum": [
                                "static",
                                "currentReplicas",
                                "currentReplicasIfHigher",
                                "currentReplicasIfLower",
                            ]
                        },
                    },
                },
                "advanced": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string"},
                                "behavior": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "scaleUp": _SCALING_RULES,
                                        "scaleDown": _SCALING_RULES,
                                    },
                                },
                            },
                        },
                    },
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["type", "metadata"],
                        "properties": {
                            "type": {"type": "string"},
                            "name": {"type": "string"},
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "useCachedMetrics": {"type": "boolean"},
                            "metadata": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                            "authenticationRef": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "kind": {
                                        "enum": [
                                            "TriggerAuthentication",
                                            "ClusterTriggerAuthentication",
                                        ]
                                    },
                                },
                            },
                        },
                        "if": {"properties": {"type": {"const": "prometheus"}}},
                        "then": {"properties": {"metadata": _PROMETHEUS_METADATA}},
                    },
                },
            },
        },
    },
}


def test_scaled_object_matches_kedas_documented_schema():
    """The ScaledObject validates against the schema above, written from KEDA's documented fields."""
    jsonschema.Draft202012Validator.check_schema(SCALED_OBJECT_SCHEMA)
    jsonschema.Draft202012Validator(SCALED_OBJECT_SCHEMA).validate(load_yaml(SCALED_OBJECT))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "triggers", 0, "metadata", "threshold"), 800),
        (("spec", "minReplicas"), 1),
        (("spec", "triggers", 0, "metadata", "serverAddres"), "http://prometheus:9090"),
        (("spec", "fallback", "replicas"), "2"),
    ],
)
def test_scaled_object_schema_rejects_mistakes(path, value):
    """The schema has teeth: a numeric threshold, a misspelt field or a string count are refused."""
    broken = copy.deepcopy(load_yaml(SCALED_OBJECT))
    parent = broken
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCALED_OBJECT_SCHEMA).validate(broken)


def test_scaled_object_scales_the_deployment_on_queue_depth():
    """KEDA targets the worker Deployment and scales on max(msgworker_queue_depth), never to zero."""
    spec = load_yaml(SCALED_OBJECT)["spec"]
    deployment = manifest("deployment.yaml")
    target = spec["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert target.get("apiVersion", "apps/v1") == deployment["apiVersion"]
    assert "replicas" not in deployment["spec"], "KEDA owns the replica count"
    [trigger] = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger.get("metricType", "AverageValue") == "AverageValue"
    query = re.sub(r"\s+", "", trigger["metadata"]["query"])
    assert re.fullmatch(r"max\(msgworker_queue_depth(\{[^}]*\})?\)", query), query
    assert float(trigger["metadata"]["threshold"]) > 0
    # The workers export the metric and run the pump: with none, nothing scales or moves.
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]


# ---------------------------------------------------------------- Prometheus Operator

# ObjectMeta as these manifests may use it (the CRDs leave metadata to the API server).
_OBJECT_META = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def refuse_unknown_fields(node: Any) -> Any:
    """The schema with additionalProperties false on every object that lists its properties and
    does not preserve unknown fields: the API server would silently prune a misspelt field.
    Go's `^(?i)...` patterns become Python's `(?i)^...` (Python wants inline flags first)."""
    if isinstance(node, list):
        return [refuse_unknown_fields(item) for item in node]
    if not isinstance(node, dict):
        return node
    strict = {key: refuse_unknown_fields(value) for key, value in node.items()}
    pattern = strict.get("pattern")
    if isinstance(pattern, str) and pattern.startswith("^(?i)"):
        strict["pattern"] = "(?i)^" + pattern.removeprefix("^(?i)")
    if (
        "properties" in strict
        and "additionalProperties" not in strict
        and not strict.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


def crd_schema(kind: str) -> dict[str, Any]:
    """The openAPIV3Schema of the vendored CRD's served and stored version, unknown fields refused."""
    [crd] = [
        doc
        for path in sorted(OPERATOR_CRDS.glob("monitoring.coreos.com_*.yaml"))
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc and doc["spec"]["names"]["kind"] == kind
    ]
    assert crd["spec"]["group"] == "monitoring.coreos.com"
    [version] = [v for v in crd["spec"]["versions"] if v["served"] and v["storage"]]
    assert version["name"] == "v1"
    schema = refuse_unknown_fields(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = _OBJECT_META
    schema["properties"]["apiVersion"] = {"const": "monitoring.coreos.com/v1"}
    schema["properties"]["kind"] = {"const": kind}
    schema["required"] = sorted({*schema.get("required", ()), "apiVersion", "kind", "metadata"})
    jsonschema.Draft7Validator.check_schema(schema)
    return schema


def test_operator_manifests_match_the_operators_crd_schemas():
    """The ServiceMonitors and the PrometheusRule validate against the Operator's own CRD
    schemas."""
    for monitor in service_monitors().values():
        jsonschema.Draft7Validator(crd_schema("ServiceMonitor")).validate(monitor)
    jsonschema.Draft7Validator(crd_schema("PrometheusRule")).validate(load_yaml(PROMETHEUS_RULE))


@pytest.mark.parametrize(
    ("kind", "keys", "value"),
    [
        ("ServiceMonitor", ("spec", "endpoints", 0, "interva"), "15s"),
        ("ServiceMonitor", ("spec", "endpoints", 0, "interval"), "15 seconds"),
        ("ServiceMonitor", ("spec", "endpoints", 0, "scheme"), "tcp"),
        ("ServiceMonitor", ("spec", "selector", "matchLabel"), {}),
        ("PrometheusRule", ("spec", "groups", 0, "rules", 0, "for"), 60),
        ("PrometheusRule", ("spec", "groups", 0, "rules", 0, "alerts"), "x"),
        ("PrometheusRule", ("spec", "groups", 0, "name"), ""),
        ("PrometheusRule", ("metadata", "name"), "Msgworker_Rules"),
    ],
)
def test_crd_schemas_reject_mistakes(kind, keys, value):
    """The CRD schemas have teeth: a misspelt field, a bad duration or a wrong type are refused."""
    original = (
        service_monitors()["msgworker"] if kind == "ServiceMonitor" else load_yaml(PROMETHEUS_RULE)
    )
    broken = copy.deepcopy(original)
    parent = broken
    for key in keys[:-1]:
        parent = parent[key]
    parent[keys[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(crd_schema(kind)).validate(broken)


def test_prometheus_rule_holds_exactly_the_alert_rules():
    """The PrometheusRule's groups are alerts.yml's groups, rule for rule, annotation for annotation."""
    assert load_yaml(PROMETHEUS_RULE)["spec"]["groups"] == load_yaml(ALERT_RULES)["groups"]


@pytest.mark.processes
def test_prometheus_rule_is_the_generators_output(tmp_path):
    """prometheusrule.yaml is what prometheusrule.py writes; --check fails on a stale copy."""
    clean = run(sys.executable, RULE_GENERATOR, "--check")
    assert clean.returncode == 0, clean.stderr
    generator = tmp_path / "k8s" / "components" / "monitoring" / "prometheusrule.py"
    (tmp_path / "prometheus").mkdir()
    generator.parent.mkdir(parents=True)
    shutil.copy(RULE_GENERATOR, generator)
    shutil.copy(DEPLOY / "generated.py", tmp_path)
    shutil.copy(PROMETHEUS_RULE, generator.parent)
    edited = ALERT_RULES.read_text(encoding="utf-8").replace("for: 1m", "for: 2m", 1)
    (tmp_path / "prometheus" / "alerts.yml").write_text(edited, encoding="utf-8")
    stale = run(sys.executable, generator, "--check")
    assert stale.returncode == 1
    assert "is not what" in stale.stderr


@pytest.mark.parametrize(
    ("monitor", "service"),
    [("msgworker", "service.yaml"), ("msgworker-serve", "serve-service.yaml")],
)
def test_service_monitors_scrape_the_workers_and_serve(monitor, service):
    """A ServiceMonitor each selects the workers' metrics Service and serve's Service (whose
    /metrics counts the deliveries), on its named port, every 15 s like compose; neither selects
    the other's."""
    spec = service_monitors()[monitor]["spec"]
    target = manifest(service)
    assert spec["selector"]["matchLabels"].items() <= target["metadata"]["labels"].items()
    assert "namespaceSelector" not in spec, "the Service is in the ServiceMonitor's namespace"
    others = {"service.yaml", "serve-service.yaml"} - {service}
    for other in others:
        assert (
            not spec["selector"]["matchLabels"].items()
            <= manifest(other)["metadata"]["labels"].items()
        )
    [endpoint] = spec["endpoints"]
    [port] = target["spec"]["ports"]
    assert endpoint["port"] == port["name"]
    assert endpoint["path"] == "/metrics"
    scrape_interval = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")["global"]
    assert endpoint["interval"] == scrape_interval["scrape_interval"]


def test_disruption_budget_covers_the_workers_and_allows_drains():
    """The PDB selects the worker pods and lets one go at a time, whatever KEDA's replica count."""
    budget = manifest("pdb.yaml")["spec"]
    deployment = manifest("deployment.yaml")
    assert budget["selector"] == deployment["spec"]["selector"]
    assert "minAvailable" not in budget, "a minAvailable at the replica count blocks every drain"
    assert budget["maxUnavailable"] == 1
    assert budget["maxUnavailable"] < load_yaml(SCALED_OBJECT)["spec"]["minReplicaCount"]


# ---------------------------------------------------------------- YAML style


@pytest.mark.processes
def test_yaml_lints_clean_in_strict_mode():
    """yamllint -s (warnings fail) passes on everything under deploy/ and on its own config."""
    config = ROOT / ".yamllint.yaml"
    done = run(tool("yamllint"), "-s", "-f", "parsable", "-c", config, DEPLOY, config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""
