"""The project's promises about itself: documented settings, packaging, OpenAPI, quiet logs."""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from gateway.api.openapi import ROUTES, document
from gateway.app import ADAPTER_PATHS, Gateway
from gateway.logs import JsonFormatter, TextFormatter
from gateway.settings import SETTINGS, markdown_table, unknown_variables
from gateway.web import PREFIX as UI_PREFIX

from .helpers import missing

ROOT = Path(__file__).resolve().parents[1]
Client = TestClient[Any, Any]


def test_readme_documents_every_setting() -> None:
    """README's settings table is the one rendered from the settings' declarations."""
    readme = (ROOT / "README.md").read_text()
    table = set(re.findall(r"^\| `(OTPGATE_[A-Z_]+)` \|", readme, flags=re.M))
    assert table == {s.name for s in SETTINGS}
    section = readme.partition("\n## Settings\n")[2]
    written = re.search(r"^(\|.*\n)+", section, flags=re.M)
    assert written is not None, "README's Settings section has no table"
    assert written.group(0) == markdown_table(), (
        "README's settings table differs from the declarations in gateway/settings.py; "
        "replace it with the output of `python -m gateway.settings --markdown`"
    )


def test_only_unknown_variables_are_warned_about() -> None:
    """A typo is named at start; the variables of otpgate's own clients (the SDK, ``otpgate
    mcp``), often set in the same shell, are not."""
    env = {
        "OTPGATE_HTTP": "127.0.0.1:8080",
        "OTPGATE_URL": "http://127.0.0.1:8080",
        "OTPGATE_API_KEY": "otpg_x",
        "OTPGATE_MCP_REVEAL": "1",
        "OTPGATE_HTTP_TRUSTED_PROXY": "127.0.0.1",
        "PATH": "/bin",
    }
    assert unknown_variables(env) == ["OTPGATE_HTTP_TRUSTED_PROXY"]


def test_readme_test_command_is_what_ci_runs() -> None:
    """The README's test command is the one `.ci/run` runs."""
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "-m pytest" in readme
    commands = re.findall(r"^```sh\n(.+?)\n```", readme, flags=re.M | re.S)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command.split("&&")[-1].strip() in ci


def test_no_other_distribution_ships_our_package_names() -> None:
    """Only otpgate provides the top-level packages gateway, smtp and sms."""
    ours = {"gateway", "smtp", "sms"}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name is None or name.lower() == "otpgate":
            continue
        top = set((dist.read_text("top_level.txt") or "").split())
        for f in dist.files or []:
            parts = Path(str(f)).parts
            if len(parts) > 1 and parts[1] == "__init__.py":
                top.add(parts[0])
        assert not (top & ours), f"{name} also ships {top & ours}"


def _is_page(path: str) -> bool:
    """The authentication center's HTML pages: not part of the API, so not in its document."""
    return path == UI_PREFIX or path.startswith(UI_PREFIX + "/")


async def test_openapi_describes_every_route(client: Client) -> None:
    """/openapi.json is OpenAPI 3 and lists every method and path the app serves (not the pages)."""
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    served = {
        (r.method.lower(), r.resource.canonical)
        for r in client.app.router.routes()
        if r.resource is not None
        and r.method not in ("HEAD", "*")
        and not _is_page(r.resource.canonical)
    }
    described = {
        (m, path) for path, item in doc["paths"].items() for m in item if m != "parameters"
    }
    assert served == described
    assert document("http://x")["servers"] == [{"url": "http://x"}]


async def test_every_route_is_registered_with_its_documentation(client: Client) -> None:
    """Each route the router serves was declared once with its operation, and nothing else was."""
    served = {
        (r.method, r.resource.canonical)
        for r in client.app.router.routes()
        if r.resource is not None and r.method != "HEAD" and not _is_page(r.resource.canonical)
    }
    declared = [(r.method, r.path) for r in client.app[ROUTES]]
    assert len(declared) == len(set(declared))
    assert served == set(declared)


async def test_adapter_webhooks_are_documented_where_the_adapters_listen(client: Client) -> None:
    """The inbound-SMS webhooks appear in the document at the paths the adapters declare."""
    doc = await (await client.get("/openapi.json")).json()
    assert "post" in doc["paths"][ADAPTER_PATHS.twilio_sms]
    assert "post" in doc["paths"][ADAPTER_PATHS.android_sms]
    provision = doc["paths"]["/v1/credentials/{id}/phone/provision"]["post"]
    assert f"<public URL>{ADAPTER_PATHS.twilio_sms} " in provision["summary"]


async def test_metrics_expose_the_contract_series(client: Client) -> None:
    """/metrics is Prometheus text with the contract's series declared from the start."""
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    assert 'otpgate_messages_total{channel="email",outcome="code"} 0' in text
    assert 'otpgate_codes_delivered_total{source="totp"} 0' in text
    assert "# TYPE otpgate_code_wait_seconds histogram" in text


async def test_query_parameters_are_held_to_their_documented_types(
    client: Client, new_tenant: Any
) -> None:
    """An empty, fractional or unknown query value is refused (not read as absent) with a
    status the operation documents."""
    tenant = await new_tenant()
    h = tenant["headers"]
    cred = await (await client.post("/v1/credentials", json={"name": "q"}, headers=h)).json()
    doc = await (await client.get("/openapi.json")).json()
    code_path = "/v1/credentials/{id}/code"
    for url, path, status in [
        ("/v1/credentials?limit=", "/v1/credentials", 400),
        ("/v1/credentials?limit=1.5", "/v1/credentials", 400),
        ("/v1/credentials?limit=1001", "/v1/credentials", 422),
        ("/v1/audit?after=", "/v1/audit", 400),
        (f"/v1/credentials/{cred['id']}/code?source=", code_path, 422),
        (f"/v1/credentials/{cred['id']}/code?since=", code_path, 400),
    ]:
        resp = await client.get(url, headers=h)
        assert resp.status == status, (url, await resp.text())
        assert str(status) in doc["paths"][path]["get"]["responses"], url


async def test_metrics_print_large_counters_exactly(client: Client, gateway: Gateway) -> None:
    """A counter past 2^24 (or a million) is printed with every digit, not rounded."""
    metrics = gateway.services.metrics
    metrics.messages.inc("email", "code", amount=2**24)
    metrics.messages.inc("email", "code")
    metrics.logins.inc("succeeded", amount=1_234_567)
    text = await (await client.get("/metrics")).text()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    messages = ("otpgate_messages_total", (("channel", "email"), ("outcome", "code")))
    assert samples[messages] == 16_777_217
    assert samples[("otpgate_logins_total", (("outcome", "succeeded"),))] == 1_234_567


async def test_metrics_pass_promtool(client: Client, gateway: Gateway) -> None:
    """/metrics, with every series moved, is what `promtool check metrics` accepts."""
    promtool = shutil.which("promtool")
    if promtool is None:
        missing("promtool is not installed (Debian package prometheus)", "OTPGATE_REQUIRE_PROMTOOL")
    metrics = gateway.services.metrics
    metrics.codes_delivered.inc("email")
    metrics.code_wait.observe(0.2)
    await client.get("/healthz")
    text = await (await client.get("/metrics")).text()
    result = await asyncio.to_thread(
        subprocess.run,
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


async def test_json_replies_end_with_a_newline(client: Client, new_tenant: Any) -> None:
    """Every JSON body, a success, a list, an error and aiohttp's own refusal, ends in a newline."""
    tenant = await new_tenant()
    for method, path, headers in [
        ("GET", "/healthz", {}),
        ("GET", "/v1/credentials", tenant["headers"]),
        ("GET", "/v1/credentials", {}),
        ("GET", "/no/such/route", {}),
        ("GET", "/openapi.json", {}),
    ]:
        resp = await client.request(method, path, headers=headers)
        assert resp.content_type == "application/json"
        raw = await resp.read()
        assert raw.endswith(b"\n") and raw.count(b"\n") == 1, (path, resp.status)
        json.loads(raw)


async def test_logs_hold_no_secrets(
    client: Client, new_tenant: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A whole session at debug level logs no key, password, secret or code."""
    caplog.set_level(logging.DEBUG)
    tenant = await new_tenant()
    h = tenant["headers"]
    secret = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"
    password = "pa55-word-that-must-not-leak"
    cred = await (
        await client.post("/v1/credentials", json={"name": "c", "password": password}, headers=h)
    ).json()
    url = f"/v1/credentials/{cred['id']}"
    await client.put(f"{url}/authenticator", json={"secret": secret, "kind": "totp"}, headers=h)
    bad = await client.put(
        f"{url}/authenticator", json={"secret": secret[:10], "kind": "totp"}, headers=h
    )
    assert bad.status == 422
    code = (await (await client.get(f"{url}/code", headers=h)).json())["code"]
    await client.get(f"{url}/password", headers=h)
    await client.get("/v1/credentials", headers={"Authorization": "Bearer otpg_wrong-key"})
    assert caplog.records, "the session logged nothing at all"
    rendered = [TextFormatter().format(r) + JsonFormatter().format(r) for r in caplog.records]
    everything = "\n".join(rendered)
    for needle in (tenant["api_key"], password, secret, secret[:10], f" {code}", "otpg_wrong"):
        assert needle not in everything


def test_json_log_lines_parse() -> None:
    """OTPGATE_LOG_FORMAT=json gives one JSON object per record, extras included."""
    record = logging.LogRecord("otpgate.x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    record.credential = "cred_x"
    doc = json.loads(JsonFormatter().format(record))
    assert doc["msg"] == "hello you" and doc["credential"] == "cred_x"
    assert doc["level"] == "info" and doc["ts"].endswith("Z")


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """Each module *path* imports, absolute, as (level, dotted name); level 0 is absolute."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((0, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            yield node.level, module
            if not module:  # `from . import x` names modules
                yield from ((node.level, alias.name) for alias in node.names)


def test_no_test_module_imports_another() -> None:
    """Test modules take shared code from tests/helpers.py, never from a test module or conftest."""
    offences = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        for level, name in _imports(path):
            if level == 0 and not name.startswith("tests."):
                continue
            last = name.rsplit(".", 1)[-1]
            if last == "conftest" or last.startswith("test_"):
                offences.append(f"{path.name} imports {'.' * level}{name}")
    assert offences == []


def _names(requirements: list[str]) -> set[str]:
    """Distribution names of requirement strings, normalised as PEP 503 says."""
    names = (re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0] for r in requirements)
    return {re.sub(r"[-_.]+", "-", n).lower() for n in names}


def test_every_imported_distribution_is_declared() -> None:
    """Each third-party module gateway, smtp and sms import comes from a declared dependency."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = _names(
        project["dependencies"]
        + [r for name, reqs in extras.items() if name != "test" for r in reqs]
    )
    providers = metadata.packages_distributions()
    ours = {"gateway", "smtp", "sms"}
    undeclared = set()
    for package in ours:
        for path in (ROOT / package).rglob("*.py"):
            for level, name in _imports(path):
                top = name.split(".")[0]
                if level or top in ours or top in sys.stdlib_module_names:
                    continue
                dists = _names(providers.get(top, [top]))
                if not dists & declared:
                    undeclared.add(f"{top} ({path.relative_to(ROOT)})")
    assert sorted(undeclared) == []


#: What the adapters may import from the core (see the contract in pyproject.toml).
ADAPTERS_MAY_USE = {
    "gateway.api.container",
    "gateway.api.errors",
    "gateway.api.inputs",
    "gateway.api.openapi",
    "gateway.api.replies",
    "gateway.errors",
    "gateway.services",
    "gateway.settings",
    "gateway.validation",
}


def test_the_adapters_contract_names_every_core_module() -> None:
    """Each module of the core is open to smtp and sms or forbidden to them: none is forgotten."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = [
        c
        for c in config["tool"]["importlinter"]["contracts"]
        if c.get("source_modules") == ["smtp", "sms"]
    ]
    forbidden = set(contract["forbidden_modules"])
    assert not forbidden & ADAPTERS_MAY_USE

    def covered(module: str) -> bool:
        parts = module.split(".")
        prefixes = {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
        return bool(prefixes & (forbidden | ADAPTERS_MAY_USE))

    core = ROOT / "gateway"
    modules = {
        f"gateway.{p.stem}" for p in core.glob("*.py") if p.stem not in {"__init__", "__main__"}
    }
    # Packages as a whole; gateway.api module by module (its edge is open, its views are not).
    modules |= {f"gateway.{p.parent.name}" for p in core.glob("*/__init__.py")} - {"gateway.api"}
    modules |= {
        f"gateway.api.{p.stem}" for p in (core / "api").glob("*.py") if p.stem != "__init__"
    }
    assert sorted(m for m in modules if not covered(m)) == []
