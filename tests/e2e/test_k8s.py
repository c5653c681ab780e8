"""The Kubernetes manifests (docker/k8s): both kustomizations build with `kubectl kustomize`, the
objects validate against the Kubernetes schemas offline (kubernetes-validate, strict: no unknown
fields), and what the deployment promises matches the service (probes on real routes, the grace
period longer than the request deadline plus the drain, the HPA's metrics made from series the
service exports)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from service.config import Settings
from service.metrics import Metrics

K8S = Path(__file__).resolve().parents[2] / "docker" / "k8s"
KUSTOMIZATIONS = [K8S / "base", K8S / "overlays" / "production"]
KUBECTL = shutil.which("kubectl")

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed (.ci/run installs "
                                "Debian's kubernetes-client)")


def build(folder: Path) -> list[dict]:
    done = subprocess.run([KUBECTL, "kustomize", str(folder)], capture_output=True, text=True,
                          timeout=120, check=True)
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(objects: list[dict]) -> dict[str, dict]:
    return {obj["kind"]: obj for obj in objects}


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_builds_and_validates_against_the_schemas(folder, tmp_path):
    objects = build(folder)
    kinds = {obj["kind"] for obj in objects}
    assert {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler",
            "ConfigMap"} <= kinds
    built = tmp_path / "built.yaml"
    built.write_text(yaml.safe_dump_all(objects))
    done = subprocess.run(["kubernetes-validate", "--strict", str(built)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("passed for resource") == len(objects), done.stdout


def test_validator_refuses_a_broken_manifest(tmp_path):
    """The check above can fail: a misspelt field is an error."""
    deployment = by_kind(build(K8S / "base"))["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(deployment))
    done = subprocess.run(["kubernetes-validate", "--strict", str(broken)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode != 0


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    return float(env.get(name, default))


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_deployment_keeps_the_services_promises(folder):
    objects = by_kind(build(folder))
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "startupProbe" in container
    # preStop sleep, then uvicorn drains for the deadline + 5 s (cutout serve): all of it
    # must fit in the grace period, or the kubelet kills requests mid-flight.
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    deadline = _seconds(env, "CUTOUT_REQUEST_TIMEOUT_S", Settings.model_fields[
        "request_timeout_s"].default)
    assert pod["terminationGracePeriodSeconds"] > float(pre_stop[1]) + deadline + 5
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert any(mount["mountPath"] == "/tmp" for mount in container["volumeMounts"])
    # Every CUTOUT_ variable is a real setting (a typo would be silently ignored).
    for name in env:
        assert name.startswith("CUTOUT_")
        assert name[len("CUTOUT_"):].lower() in Settings.model_fields, name
    Settings(**{name[len("CUTOUT_"):].lower(): value for name, value in env.items()})
    resources = container["resources"]
    assert _mib(resources["limits"]["memory"]) >= _mib(resources["requests"]["memory"])


def _mib(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()
    return int(number) * (1024 if unit == "Gi" else 1)


def test_autoscaler_reads_the_services_own_series():
    objects = by_kind(build(K8S / "base"))
    hpa = objects["HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == objects["Deployment"]["metadata"]["name"]
    metric_types = [metric["type"] for metric in hpa["spec"]["metrics"]]
    assert metric_types == ["Pods", "Resource"]  # the load signal, CPU as the fallback
    custom = hpa["spec"]["metrics"][0]["pods"]["metric"]["name"]
    rules = yaml.safe_load(objects["ConfigMap"]["data"]["config.yaml"])["rules"]
    (rule,) = [r for r in rules if r["name"]["as"] == custom]
    exported = {metric.name for metric in Metrics().registry.collect()}
    used = set(re.findall(r"cutout_[a-z_]+", rule["metricsQuery"] + rule["seriesQuery"]))
    assert used and used <= exported, used - exported
