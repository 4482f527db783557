"""The OpenAPI document as a product, checked by the tools people use on it.

A gateway is served on loopback (``otpgate serve``) with a tenant's key; its
``/openapi.json`` is linted by Redocly, turned into a Python client
(openapi-python-client) and a TypeScript one (openapi-typescript, compiled by
tsc) that each make real calls, and fuzzed by Schemathesis with every check.
The Node tools are pinned in ``tests/openapi/package-lock.json``
(``npm ci --prefix tests/openapi``), the Python ones in the ``test`` extra;
without them these tests skip, unless ``OTPGATE_REQUIRE_OPENAPI_TOOLS=1``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .helpers import ADMIN_KEY, ROOT, Server, missing, serve_env

TOOLS = ROOT / "tests" / "openapi"
REQUIREMENT = "OTPGATE_REQUIRE_OPENAPI_TOOLS"
#: Schemathesis' time budget, in seconds: enough for every operation's cases and the
#: stateful phase, small enough for CI.
SCHEMATHESIS_SECONDS = 120


def node_tool(name: str) -> Path:
    path = TOOLS / "node_modules" / ".bin" / name
    if not path.exists() or shutil.which("node") is None:
        missing(f"{path} is not installed (npm ci --prefix tests/openapi)", REQUIREMENT)
    return path


def python_tool(name: str) -> Path:
    path = Path(sys.executable).parent / name
    if not path.exists():
        missing(
            f"{name} is not installed in this environment (pip install -e '.[test]')", REQUIREMENT
        )
    return path


def run(*args: str | Path, cwd: Path, timeout: float = 300, **env: str) -> str:
    """Run a tool; its output, or the test fails with it."""
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{args[0]} exited {result.returncode}:\n{output[-6000:]}"
    return output


@dataclass
class Served:
    base: str
    key: str
    spec: Path
    tmp: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`otpgate serve` on loopback, a tenant's owner key, and the document it serves."""
    tmp = tmp_path_factory.mktemp("openapi")
    env = serve_env(
        tmp / "data",
        OTPGATE_ADMIN_KEY=ADMIN_KEY,
        # With a token the SMS webhook checks signatures (403) instead of being off (503).
        OTPGATE_TWILIO_AUTH_TOKEN="a-twilio-auth-token-for-the-openapi-tests",
        # Schemathesis' ignored_auth check sends a wrong key to every route and expects
        # 401: past the allowance of failures an address gets 429 instead (pinned in
        # tests/test_errors_and_tenancy.py), so the run gets a large allowance.
        OTPGATE_AUTH_FAILURES_PER_MINUTE="1000000",
    )
    env["OTPGATE_PUBLIC_URL"] = f"http://{env['OTPGATE_HTTP']}"
    server = Server(env, tmp).start()
    try:
        status, tenant = server.call("POST", "/v1/tenants", {"name": "openapi"}, key=ADMIN_KEY)
        assert status == 201, tenant
        spec = tmp / "openapi.json"
        with urllib.request.urlopen(f"{server.base}/openapi.json", timeout=10) as resp:
            spec.write_bytes(resp.read())
        yield Served(server.base, tenant["api_key"], spec, tmp)
    finally:
        server.kill()


def test_redocly_finds_no_errors(served: Served) -> None:
    """Redocly's recommended rules find no error in the document."""
    redocly = node_tool("redocly")
    result = subprocess.run(
        [str(redocly), "lint", str(served.spec), "--format=json"],
        cwd=TOOLS,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(result.stdout[result.stdout.index("{") :])
    problems = [
        f"{p['severity']} {p['ruleId']}: {p['message']}"
        for p in report["problems"]
        if p["severity"] == "error"
    ]
    assert report["totals"]["errors"] == 0, problems
    assert result.returncode == 0, result.stderr[-3000:]


def test_every_operation_is_named_and_typed(served: Served) -> None:
    """Each operation has a unique operationId, public ones say so, and every JSON
    success body is typed with its properties; every error refers to the Error schema
    (and the inbox address is not "format": "email": inbox.localhost is reserved)."""
    doc = json.loads(served.spec.read_text())
    ids = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            ids.append(op["operationId"])
            assert "security" in op, (method, path)
            for status, answer in op["responses"].items():
                content = answer.get("content", {})
                schema = content.get("application/json", {}).get("schema")
                # /readyz's 503 is its status, not an error.
                if status.startswith(("4", "5")) and schema is not None and path != "/readyz":
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
                if status.startswith("2") and schema is not None:
                    assert "properties" in schema or "allOf" in schema, (method, path, status)
    assert len(ids) == len(set(ids))
    assert '"format": "email"' not in json.dumps(doc)


def test_python_client_calls_the_gateway(served: Served) -> None:
    """openapi-python-client's client of the document compiles and makes real calls."""
    generator = python_tool("openapi-python-client")
    out = served.tmp / "otpgate_api"  # with --meta none, the package itself
    # The generator formats its output with ruff, which it looks for on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    output = run(generator, "generate", "--path", served.spec, "--output-path", out,
                 "--meta", "none", cwd=served.tmp, PATH=path)  # fmt: skip
    assert "Warning" not in output, output
    run(sys.executable, "-m", "compileall", "-q", out, cwd=served.tmp)
    script = textwrap.dedent(
        """
        import sys
        from otpgate_api import AuthenticatedClient
        from otpgate_api.api.default import create_credential, list_credentials
        from otpgate_api.models import CreateCredentialCredentialIn

        client = AuthenticatedClient(base_url=sys.argv[1], token=sys.argv[2])
        body = CreateCredentialCredentialIn(name="from python")
        made = create_credential.sync(client=client, body=body)
        page = list_credentials.sync(client=client)
        print(made.id, made.inbox, [c.name for c in page.credentials])
        """
    )
    output = run(sys.executable, "-c", script, served.base, served.key, cwd=served.tmp,
                 PYTHONPATH=str(served.tmp))  # fmt: skip
    cred_id, inbox, names = output.split(" ", 2)
    assert cred_id.startswith("cred_") and inbox.endswith("@inbox.localhost")
    assert "from python" in names


def test_typescript_client_calls_the_gateway(served: Served) -> None:
    """openapi-typescript's types of the document typecheck (tsc --strict) a client
    that makes real calls with openapi-fetch."""
    generate, tsc = node_tool("openapi-typescript"), node_tool("tsc")
    out = served.tmp / "ts-client"
    out.mkdir()
    (out / "node_modules").symlink_to(TOOLS / "node_modules")
    run(generate, served.spec, "--output", out / "schema.d.ts", cwd=out)
    (out / "main.mts").write_text(
        textwrap.dedent(
            """
            import createClient from "openapi-fetch";
            import type { paths } from "./schema.d.ts";

            const [base, key]: [string, string] = ARGUMENTS;
            const client = createClient<paths>({
              baseUrl: base,
              headers: { Authorization: `Bearer ${key}` },
            });
            const body = { name: "from typescript" };
            const made = await client.POST("/v1/credentials", { body });
            if (made.error) throw new Error(made.error.error.message);
            const id: string | undefined = made.data.id;
            const page = await client.GET("/v1/credentials", { params: { query: { limit: 10 } } });
            if (page.error) throw new Error(page.error.error.message);
            const names: string[] = page.data.credentials.map((c) => c.name ?? "");
            const missing = await client.GET("/v1/credentials/{id}", {
              params: { path: { id: "cred_aaaaaaaaaaaaaaaa" } },
            });
            console.log(JSON.stringify({ id, names, missing: missing.error?.error.code }));
            """
        ).replace("ARGUMENTS", json.dumps([served.base, served.key]))
    )
    run(tsc, "--strict", "--module", "nodenext", "--target", "es2022",
        "--allowImportingTsExtensions", "--rewriteRelativeImportExtensions", "--outDir", "dist",
        "main.mts", cwd=out)  # fmt: skip
    output = run("node", out / "dist" / "main.mjs", cwd=out)
    result = json.loads(output.strip().splitlines()[-1])
    assert result["id"].startswith("cred_")
    assert "from typescript" in result["names"]
    assert result["missing"] == "not_found"


def test_schemathesis_finds_no_failures(served: Served) -> None:
    """Schemathesis, with every check (the departures are explained in
    tests/openapi/schemathesis.toml), finds nothing against the served gateway."""
    st = python_tool("st")
    # One worker: with two, Hypothesis's descriptions of its filters call ast.parse from
    # two threads at once, which CPython 3.11 does not survive ("AST constructor recursion
    # depth mismatch", a SystemError that ends the run).
    output = run(
        st, "--config-file", TOOLS / "schemathesis.toml", "run", f"{served.base}/openapi.json",
        "--header", f"Authorization: Bearer {served.key}",
        "--max-examples", "10", "--max-time", str(SCHEMATHESIS_SECONDS), "--workers", "1",
        "--seed", "1", "--no-color",
        cwd=served.tmp, timeout=SCHEMATHESIS_SECONDS + 180,
    )  # fmt: skip
    generated = re.search(r"(\d+) generated", output)
    assert generated and int(generated.group(1)) > 1000, output[-3000:]
    # The key worked throughout: no operation got only 401s. (Only 403s is right for
    # /v1/tenants, the admin's, and the SMS webhooks, which are signed, not keyed.)
    assert "401 Unauthorized" not in output, output[-3000:]
    print(output[-1500:])
