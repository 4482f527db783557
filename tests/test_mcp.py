"""``otpgate mcp``: the MCP server, driven by the ``mcp`` package's own client.

The gateway runs for real on loopback (HTTP, SMTP, background workers); the
MCP server is the ``otpgate mcp`` process, reached over stdio and over
streamable HTTP; codes and links arrive as mail over SMTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

pytest.importorskip("mcp", reason="the mcp extra is not installed (pip install -e '.[test]')")

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

from gateway.client import AsyncClient

from .helpers import (
    OTPGATE,
    ROOT,
    Served,
    bearer,
    free_port,
    link_mail,
    otp_mail,
    owner_and_credential,
    send_mail,
    served_on_loopback,
)

CONTRACT_TOOLS = {
    "list_credentials",
    "start_login",
    "wait_for_code",
    "wait_for_link",
    "finish_login",
    "ask_person",
}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """A real gateway on loopback (HTTP and SMTP), with its background workers running."""
    async with served_on_loopback(tmp_path, background=True, smtp=True) as s:
        yield s


async def agent_setup(served: Served) -> tuple[str, dict[str, Any]]:
    """A tenant, one credential, and an agent-role key limited to it (the key MCP gets)."""
    async with aiohttp.ClientSession(served.url) as http:
        owner, cred = await owner_and_credential(
            http, name="Acme Cloud", username="ops@acme.example"
        )
        key = {"name": "mcp", "role": "agent", "credential_ids": [cred["id"]]}
        async with http.post("/v1/keys", json=key, headers=bearer(owner)) as r:
            assert r.status == 201
            return (await r.json())["key"], cred


def mcp_env(served: Served, key: str, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("OTPGATE_")}
    return {**keep, "OTPGATE_URL": served.url, "OTPGATE_API_KEY": key, **extra}


@asynccontextmanager
async def stdio_session(env: dict[str, str]) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=OTPGATE[0], args=[*OTPGATE[1:], "mcp"], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def http_session(env: dict[str, str], tmp_path: Path) -> AsyncIterator[ClientSession]:
    port = free_port()
    with (tmp_path / "mcp-http.err").open("w") as err:
        proc = subprocess.Popen(  # noqa: ASYNC220 (started once; stopped in finally)
            [*OTPGATE, "mcp", "--http", f"127.0.0.1:{port}"], env=env, stderr=err
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, (tmp_path / "mcp-http.err").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "otpgate mcp --http did not listen"
                await asyncio.sleep(0.1)
        url = f"http://127.0.0.1:{port}/mcp"
        async with (
            streamable_http_client(url) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def data(result: CallToolResult) -> dict[str, Any]:
    assert not result.isError, text(result)
    assert isinstance(result.structuredContent, dict)
    return result.structuredContent


def text(result: CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, TextContent))


async def test_stdio_tools_keep_codes_and_links_out_of_the_context(
    served: Served, tmp_path: Path
) -> None:
    """Over stdio, wait_for_code and wait_for_link refuse and use nothing up; the rest work."""
    key, cred = await agent_setup(served)
    async with stdio_session(mcp_env(served, key)) as mcp:
        names = {tool.name for tool in (await mcp.list_tools()).tools}
        assert names >= CONTRACT_TOOLS

        listed = data(await mcp.call_tool("list_credentials", {}))["credentials"]
        assert [(c["id"], c["name"]) for c in listed] == [(cred["id"], "Acme Cloud")]

        login = data(await mcp.call_tool("start_login", {"credential_id": cred["id"]}))
        assert login["status"] == "open"
        await asyncio.to_thread(send_mail, served.smtp_port, cred["inbox"], otp_mail("482913"))
        url = "https://acme.example/signin?token=9fK2mQ7xLp0RtY4w"
        await asyncio.to_thread(send_mail, served.smtp_port, cred["inbox"], link_mail(url, "x"))

        refused = await mcp.call_tool("wait_for_code", {"login_id": login["login_id"]})
        assert refused.isError and "OTPGATE_MCP_REVEAL=1" in text(refused)
        assert "482913" not in json.dumps(refused.model_dump())
        refused = await mcp.call_tool("wait_for_link", {"login_id": login["login_id"]})
        assert refused.isError and "OTPGATE_MCP_REVEAL=1" in text(refused)

        # Nothing was used up: the login still hands both out, to a browser helper say.
        async with AsyncClient(served.url, key) as gate:
            held = await gate.get_login(login["login_id"])
            assert (await held.code(wait=10)).value == "482913"
            assert (await held.link(wait=10)).url == url

        done = data(
            await mcp.call_tool(
                "finish_login", {"login_id": login["login_id"], "outcome": "succeeded"}
            )
        )
        assert done["status"] == "succeeded"

        again = await mcp.call_tool(
            "finish_login", {"login_id": "lgn_unknown", "outcome": "failed"}
        )
        assert again.isError and "404" in text(again)


async def test_http_tools_reveal_when_allowed_and_ask_a_person(
    served: Served, tmp_path: Path
) -> None:
    """Over streamable HTTP with OTPGATE_MCP_REVEAL=1: code, link, reject, a person's approval."""
    key, cred = await agent_setup(served)
    env = mcp_env(served, key, OTPGATE_MCP_REVEAL="1")
    async with http_session(env, tmp_path) as mcp:
        login = data(await mcp.call_tool("start_login", {"credential_id": cred["id"]}))
        lid = login["login_id"]
        busy = await mcp.call_tool("start_login", {"credential_id": cred["id"]})
        assert busy.isError and "login_in_progress" in text(busy)

        await asyncio.to_thread(send_mail, served.smtp_port, cred["inbox"], otp_mail("551208"))
        got = data(await mcp.call_tool("wait_for_code", {"login_id": lid, "wait": 10}))
        assert (got["outcome"], got["code"], got["source"]) == ("code", "551208", "email")
        assert data(await mcp.call_tool("reject_code", {"login_id": lid}))["rejected"] is True
        none = data(await mcp.call_tool("wait_for_code", {"login_id": lid, "wait": 0.2}))
        assert none == {"login_id": lid, "outcome": "no_code"}

        url = "https://acme.example/signin?token=Qw3rTy7uIo9pAs1D"
        await asyncio.to_thread(send_mail, served.smtp_port, cred["inbox"], link_mail(url, "x"))
        link = data(await mcp.call_tool("wait_for_link", {"login_id": lid, "wait": 10}))
        assert (link["outcome"], link["url"]) == ("link", url)

        asked = data(
            await mcp.call_tool(
                "ask_person",
                {"credential_id": cred["id"], "kind": "approval", "match": "42"},
            )
        )
        assert asked["status"] == "pending" and asked["submit_url"].startswith(served.url)
        async with (
            aiohttp.ClientSession() as http,
            http.post(asked["submit_url"], json={"decision": "approved"}) as r,
        ):
            assert r.status == 204
        decided = data(
            await mcp.call_tool(
                "wait_for_person", {"interaction_id": asked["interaction_id"], "wait": 10}
            )
        )
        assert decided["status"] == "approved"
        done = data(await mcp.call_tool("finish_login", {"login_id": lid, "outcome": "failed"}))
        assert done["status"] == "failed"


def test_mcp_without_a_key_says_so() -> None:
    """`otpgate mcp` without OTPGATE_API_KEY ends at once with status 2 and the reason."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTPGATE_")}
    done = subprocess.run(
        [*OTPGATE, "mcp"], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 2 and "OTPGATE_API_KEY" in done.stderr


async def test_readme_mcp_example_runs(served: Served, tmp_path: Path) -> None:
    """README's MCP example, copied as it is, lists the credentials through `otpgate mcp`."""
    key, cred = await agent_setup(served)
    readme = (ROOT / "README.md").read_text()
    section = readme.partition("\n### MCP\n")[2].partition("\n### ")[0]
    (example,) = re.findall(r"```python\n(.+?)```", section, flags=re.S)
    script = tmp_path / "mcp_example.py"
    script.write_text(example)
    env = mcp_env(served, key, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    done = await asyncio.create_subprocess_exec(
        sys.executable, str(script), env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(done.communicate(), 60)
    assert done.returncode == 0
    assert cred["id"] in out.decode()
