"""Deployment of msgworker serve: the Kubernetes Deployment and Service, compose and the image."""

from __future__ import annotations

import pytest

from tests.deploy.test_deploy import BASE, compose_model, manifest, run, stages, tool
from worker.http.metrics import HttpMetrics
from worker.observe.build_info import package_version

SERVE_MANIFESTS = ("serve-deployment.yaml", "serve-service.yaml", "serve-pdb.yaml")
SERVE_PORT = 8080


def serve_container():
    [container] = manifest("serve-deployment.yaml")["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.processes
def test_serve_manifests_pass_strict_kubernetes_validation():
    """kubernetes-validate --strict validates the Deployment, the Service and the budget."""
    files = [BASE / name for name in SERVE_MANIFESTS]
    done = run(tool("kubernetes-validate"), "--strict", *files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARN" not in done.stdout
    assert done.stdout.count(" passed for resource ") == len(files)


def test_serve_probes_liveness_on_healthz_and_readiness_on_readyz():
    """Alive whatever Redis does, ready only while Redis answers; the port is named http."""
    container = serve_container()
    assert container["args"] == ["serve"]
    assert container["ports"] == [{"name": "http", "containerPort": SERVE_PORT, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_serve_takes_its_secrets_from_its_own_secret_never_the_configmap():
    """The console password, the tokens and the webhook secret come from the Secret
    msgworker-serve (the overlay makes it), never the ConfigMap, and serve gets no Gateway key."""
    sources = [next(iter(source.items())) for source in serve_container()["envFrom"]]
    assert sources == [
        ("configMapRef", {"name": "msgworker-config"}),
        ("secretRef", {"name": "msgworker-serve"}),
    ]
    assert "env" not in serve_container()
    for name in (
        "MSGWORKER_CONSOLE_PASSWORD",
        "MSGWORKER_INGEST_TOKENS",
        "MSGWORKER_WEBHOOK_SECRET",
    ):
        assert name not in manifest("configmap.yaml")["data"]


def test_serve_service_selects_the_serve_pods_only():
    service = manifest("serve-service.yaml")
    pod_labels = manifest("serve-deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "serve"
    worker = manifest("deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= worker.items()


@pytest.mark.processes
def test_compose_runs_serve_with_redis_and_its_own_healthcheck():
    serve = compose_model()["services"]["serve"]
    assert serve["command"] == ["serve"]
    assert serve["environment"]["MSGWORKER_BROKER_URL"] == "redis://redis:6379/0"
    assert "/healthz" in " ".join(serve["healthcheck"]["test"])
    assert any(p["target"] == SERVE_PORT for p in serve["ports"])


def test_image_exposes_the_serve_port():
    exposed = " ".join(rest for kw, rest in stages()[-1] if kw == "EXPOSE").split()
    assert str(SERVE_PORT) in exposed


def test_serve_exports_build_info_as_serve():
    """serve's /metrics carries msgworker_build_info{component="serve"}: dashboards find its scrape
    job by it, and the rule that counts workers does not count it."""
    registry = HttpMetrics().registry
    assert (
        registry.get_sample_value(
            "msgworker_build_info", {"version": package_version(), "component": "serve"}
        )
        == 1
    )
