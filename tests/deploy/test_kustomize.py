"""The Kubernetes install: each overlay under deploy/k8s/overlays renders with kustomize (as
`kubectl kustomize` does, from a copy holding the operator's env files made from the examples),
every object it renders validates offline, and the rendered install is wired: the console's
password reaches serve, both the workers and serve are scraped, the alert rules are loaded.

Helm cannot be installed from the registries this project's machines reach (Debian has no helm
package; the PyPI project of that name is unrelated), so the install is a Kustomize base with
components and overlays; docs/kubernetes.md walks through it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.test_deploy import (
    K8S,
    PROMETHEUS_RULE,
    SCALED_OBJECT_SCHEMA,
    crd_schema,
    load_yaml,
    run,
    tool,
)

pytestmark = pytest.mark.processes  # kubectl and kubernetes-validate run as child processes

OVERLAYS = ("trial", "production")
CUSTOM_KINDS = {"ScaledObject", "ServiceMonitor", "PrometheusRule"}


def kubectl() -> str:
    found = shutil.which("kubectl")
    assert found, "kubectl (with its built-in kustomize) is needed: install kubectl"
    return found


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, list[dict[str, Any]]]:
    """Each overlay's objects, rendered from a copy of deploy/k8s with the env files an operator
    writes made from the committed examples."""
    copy = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, copy)
    objects = {}
    for overlay in OVERLAYS:
        folder = copy / "overlays" / overlay
        for example in folder.glob("*.env.example"):
            shutil.copy(example, folder / example.name.removesuffix(".example"))
        done = subprocess.run(  # noqa: S603 - kubectl, fixed arguments
            [kubectl(), "kustomize", str(folder)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        objects[overlay] = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    return objects


def find(objects: list[dict[str, Any]], kind: str, prefix: str = "") -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and o["metadata"]["name"].startswith(prefix)]


def container(objects: list[dict[str, Any]], deployment: str) -> dict[str, Any]:
    [found] = [o for o in find(objects, "Deployment") if o["metadata"]["name"] == deployment]
    [first] = found["spec"]["template"]["spec"]["containers"]
    return first


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_validates_offline(rendered, overlay, tmp_path):
    """Core kinds pass kubernetes-validate --strict; KEDA's and the Operator's kinds their schemas."""
    objects = rendered[overlay]
    core = [o for o in objects if o["kind"] not in CUSTOM_KINDS]
    files = []
    for index, obj in enumerate(core):
        path = tmp_path / f"{index}-{obj['kind']}.yaml"
        path.write_text(yaml.safe_dump(obj), encoding="utf-8")
        files.append(path)
    done = run(tool("kubernetes-validate"), "--strict", *files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARN" not in done.stdout, "an object was skipped, not validated"
    assert done.stdout.count(" passed for resource ") == len(files)
    for obj in objects:
        if obj["kind"] == "ScaledObject":
            jsonschema.Draft202012Validator(SCALED_OBJECT_SCHEMA).validate(obj)
        elif obj["kind"] in CUSTOM_KINDS:
            jsonschema.Draft7Validator(crd_schema(obj["kind"])).validate(obj)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_console_password_reaches_serve_from_a_secret(rendered, overlay):
    """The Secret serve reads holds MSGWORKER_CONSOLE_PASSWORD (and the tokens and webhook
    secret); the workers' Secret holds the Gateway key only."""
    objects = rendered[overlay]
    secrets = {o["metadata"]["name"]: o for o in find(objects, "Secret")}
    serve_sources = [
        s["secretRef"]["name"]
        for s in container(objects, "msgworker-serve")["envFrom"]
        if "secretRef" in s
    ]
    worker_sources = [
        s["secretRef"]["name"]
        for s in container(objects, "msgworker")["envFrom"]
        if "secretRef" in s
    ]
    [serve_secret] = serve_sources
    [worker_secret] = worker_sources
    assert set(secrets[serve_secret]["data"]) == {
        "MSGWORKER_CONSOLE_PASSWORD",
        "MSGWORKER_INGEST_TOKENS",
        "MSGWORKER_WEBHOOK_SECRET",
    }
    assert set(secrets[worker_secret]["data"]) == {"MSGWORKER_API_KEY"}


def test_the_trial_runs_the_console_redis_and_the_sandbox(rendered):
    """The trial's console password is set (the console answers), its Redis is the one the
    ConfigMap names, and the workers send to the sandbox with the key the sandbox accepts."""
    objects = rendered["trial"]
    [config] = find(objects, "ConfigMap", "msgworker-config")
    assert config["data"]["MSGWORKER_API_BASE_URL"] == "http://msgworker-sandbox:8099"
    assert config["data"]["MSGWORKER_SANDBOX"] == "true"
    assert config["data"]["MSGWORKER_BROKER_URL"] == "redis://redis:6379/0"
    assert [o["metadata"]["name"] for o in find(objects, "Service", "redis")] == ["redis"]
    [serve_secret] = find(objects, "Secret", "msgworker-serve")
    assert serve_secret["data"]["MSGWORKER_CONSOLE_PASSWORD"]
    sandbox = container(objects, "msgworker-sandbox")
    [key] = sandbox["env"]
    [worker_secret] = find(objects, "Secret", "msgworker-secret")
    assert key["valueFrom"]["secretKeyRef"]["name"] == worker_secret["metadata"]["name"]


def test_production_scrapes_workers_and_serve_and_loads_the_rules(rendered):
    """Both scrape targets (the workers' metrics Service and serve's), the alert rules as
    alerts.yml has them, KEDA on the workers and an Ingress to serve's API, webhooks and console."""
    objects = rendered["production"]
    services = {o["metadata"]["name"]: o for o in find(objects, "Service")}
    scraped = set()
    for monitor in find(objects, "ServiceMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"].items()
        scraped |= {n for n, s in services.items() if selector <= s["metadata"]["labels"].items()}
    assert scraped == {"msgworker-metrics", "msgworker-serve"}
    [rule] = find(objects, "PrometheusRule")
    assert rule["spec"]["groups"] == load_yaml(PROMETHEUS_RULE)["spec"]["groups"]
    [scaled] = find(objects, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "msgworker"
    [ingress] = find(objects, "Ingress")
    paths = {p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert {"/v1/", "/webhooks/", "/console"} <= paths
    assert "/metrics" not in paths


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_image_is_the_overlays_value(rendered, overlay):
    """Every msgworker container runs the image the overlay names (registry, name and tag)."""
    kustomization = yaml.safe_load(
        (K8S / "overlays" / overlay / "kustomization.yaml").read_text(encoding="utf-8")
    )
    [image] = kustomization["images"]
    wanted = f"{image['newName']}:{image['newTag']}"
    images = {
        c["image"]
        for o in find(rendered[overlay], "Deployment")
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert wanted in images
    assert all(i == wanted for i in images if "msgworker" in i)


def test_env_files_are_never_committed():
    """The operator's env files are ignored by git; only their examples are in the repository."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(  # noqa: S603 - git, fixed arguments
        [
            shutil.which("git") or "git",
            "check-ignore",
            "-q",
            "deploy/k8s/overlays/production/serve.env",
        ],
        cwd=root,
        check=False,
    )
    assert done.returncode == 0
