"""The Grafana dashboard and the Prometheus alerts (deploy/grafana, deploy/prometheus).

promtool checks the rules and runs their unit tests, and checks every panel's
query; every metric a rule or a panel reads must be in a real gateway's
``/metrics``. Without promtool those tests skip, unless
``OTPGATE_REQUIRE_PROMTOOL=1`` (set by ``.ci/run``, which installs Debian's
``prometheus`` package).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestClient

from .helpers import missing

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "otpgate-alerts.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "otpgate-alerts.test.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "otpgate.json"
ALERTS = {
    "OtpgateIngestFailures",
    "OtpgateIngestWorkerRestarting",
    "OtpgateWebhookBacklog",
    "OtpgateCodeWaitSlow",
    "OtpgateUnsolicitedCodes",
}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        missing("promtool is not installed (Debian package prometheus)", "OTPGATE_REQUIRE_PROMTOOL")
    return path


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def panel_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p["targets"]]


def metric_names(exprs: list[str]) -> set[str]:
    found = {m for e in exprs for m in re.findall(r"\b(otpgate_[a-z_]+)", e)}
    return {re.sub(r"_(bucket|sum|count)$", "", m) for m in found}


def test_alert_rules_pass_promtool_check() -> None:
    """``promtool check rules`` accepts the alerts, and each one the issue asks for is there."""
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    groups = yaml.safe_load(RULES.read_text())["groups"]
    assert {r["alert"] for g in groups for r in g["rules"]} == ALERTS


def test_alert_rules_unit_tests_pass() -> None:
    """``promtool test rules``: each alert fires when it should and stays quiet otherwise."""
    result = subprocess.run(
        [promtool(), "test", "rules", str(RULE_TESTS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert tested == ALERTS


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Every panel's query parses (checked by promtool as recording rules)."""
    exprs = [e.replace("$__rate_interval", "5m") for e in panel_exprs()]
    rules = {"groups": [{"name": "panels", "rules": [
        {"record": f"otpgate:panel:{i}", "expr": e} for i, e in enumerate(exprs)
    ]}]}  # fmt: skip
    path = tmp_path / "panels.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_uses_a_chosen_prometheus_data_source() -> None:
    """Panels read the data source picked in the dashboard's variable, not a fixed one."""
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    (variable,) = dashboard["templating"]["list"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"


async def test_every_metric_queried_is_exported(client: TestClient[Any, Any]) -> None:
    """Each metric a rule or a panel reads appears in the gateway's real /metrics."""
    text = await (await client.get("/metrics")).text()
    exported = set(re.findall(r"^# TYPE (otpgate_[a-z_]+) ", text, flags=re.M))
    queried = metric_names(rule_exprs()) | metric_names(panel_exprs())
    assert queried, "no metric found in the rules and panels"
    assert queried <= exported, f"not exported: {sorted(queried - exported)}"
    assert metric_names(rule_exprs()) >= {
        "otpgate_ingest_failures_total",
        "otpgate_ingest_worker_restarts_total",
        "otpgate_webhook_deliveries_pending",
        "otpgate_code_wait_seconds",
        "otpgate_codes_unsolicited_total",
    }


def test_readme_promtool_example_runs() -> None:
    """The README's promtool commands, run as written, pass."""
    readme = (ROOT / "README.md").read_text()
    section = readme.partition("\n### Dashboards and alerts\n")[2].partition("\n## ")[0]
    (script,) = re.findall(r"^```sh\n(.+?)\n```", section, flags=re.M | re.S)
    promtool()
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
