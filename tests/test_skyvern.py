"""Skyvern's ``totp_url`` on a real gateway: its request, its signature, its answer.

The wire format is Skyvern's (``skyvern/services/otp_service.py``,
``_get_otp_value_from_url``, and ``skyvern/forge/sdk/core/security.py``): a
POST whose body is compact JSON of the run's ids, signed with HMAC-SHA256 of
the raw body under the Skyvern API key (hex, ``x-skyvern-signature``), with an
unsigned ``x-skyvern-timestamp``; the answer is 200 ``{"verification_code"}``.
The last test runs Skyvern's own polling code, from the ``skyvern`` package.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.client import AsyncClient

from .helpers import (
    ROOT,
    Served,
    bearer,
    extra_env,
    link_mail,
    otp_mail,
    owner_and_credential,
    send_mail,
    served_on_loopback,
)

SKYVERN_KEY = "sk-test-0123456789abcdef0123456789abcdef"
#: The release of Skyvern whose polling code the last test runs.
SKYVERN = "skyvern[local]==1.0.56"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """A real gateway on loopback (HTTP and SMTP), with its background workers running."""
    async with served_on_loopback(tmp_path, background=True, smtp=True) as s:
        yield s


async def setup(served: Served) -> tuple[str, dict[str, Any], str]:
    """A tenant's owner key, a credential, and its totp_url for the Skyvern key above."""
    async with aiohttp.ClientSession(served.url) as http:
        owner, cred = await owner_and_credential(http)
        async with http.put(
            f"/v1/credentials/{cred['id']}/skyvern",
            json={"api_key": SKYVERN_KEY},
            headers=bearer(owner),
        ) as r:
            assert r.status == 200
            endpoint = await r.json()
    assert endpoint["totp_url"].startswith(f"{served.url}/skyvern/totp/")
    return owner, cred, endpoint["totp_url"]


async def skyvern_poll(url: str, ids: dict[str, str], *, key: str = SKYVERN_KEY) -> tuple[int, Any]:
    """One poll as Skyvern sends it: compact JSON, HMAC-SHA256 hex of the body, its headers."""
    body = json.dumps(ids, separators=(",", ":"), ensure_ascii=False)
    signature = hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()
    headers = {
        "x-skyvern-timestamp": str(int(time.time())),
        "x-skyvern-signature": signature,
        "Content-Type": "application/json",
    }
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        return r.status, await r.json()


async def test_a_run_gets_its_code_once_then_a_newer_one_then_a_link(served: Served) -> None:
    """A run's poll gets the code mailed before it; polling again means refused: a newer one."""
    _, cred, url = await setup(served)
    assert served.smtp_port is not None
    run = {"task_id": "tsk_1", "workflow_run_id": "wr_1", "workflow_permanent_id": "wpid_1"}
    await asyncio.to_thread(send_mail, served.smtp_port, cred["inbox"], otp_mail("318274"))
    assert await skyvern_poll(url, run) == (200, {"verification_code": "318274"})

    # Asked again in the same run (the site refused it): only a code that came after it.
    await asyncio.to_thread(send_mail, served.smtp_port, cred["inbox"], otp_mail("640051"))
    assert await skyvern_poll(url, run) == (200, {"verification_code": "640051"})

    # A new run: a sign-in link mailed for it is the answer.
    link = "https://acme.example/magic?token=Zx81Kq0Lm2Np3Oq4"
    await asyncio.to_thread(send_mail, served.smtp_port, cred["inbox"], link_mail(link, "x"))
    assert await skyvern_poll(url, {"task_id": "tsk_2"}) == (200, {"verification_code": link})


async def test_bad_signatures_and_tokens_are_refused_and_use_nothing(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong key or token is 401 or 404 in the JSON error shape; the code stays for Skyvern.

    Nothing logged holds the URL's token, the Skyvern key or the code.
    """
    caplog.set_level(logging.DEBUG)
    _, cred, url = await setup(served)
    assert served.smtp_port is not None
    await asyncio.to_thread(send_mail, served.smtp_port, cred["inbox"], otp_mail("902113"))
    status, body = await skyvern_poll(url, {"task_id": "tsk_1"}, key="sk-someone-else")
    assert status == 401 and body["error"]["code"] == "bad_signature"
    assert "902113" not in json.dumps(body)
    status, body = await skyvern_poll(url + "x", {"task_id": "tsk_1"})
    assert status == 404 and body["error"]["code"] == "not_found"
    assert await skyvern_poll(url, {"task_id": "tsk_1"}) == (200, {"verification_code": "902113"})
    # aiosmtpd's own debug log ("mail.log") shows the mail as it came; it is not the route's.
    ours = [r for r in caplog.records if r.name != "mail.log"]
    logged = "\n".join(r.getMessage() + str(r.__dict__) for r in ours)
    for secret in (url.rsplit("/", 1)[1], SKYVERN_KEY, "902113"):
        assert secret not in logged


async def test_another_agents_login_makes_skyvern_wait(served: Served) -> None:
    """While another agent signs in to the account, Skyvern is told "not yet" at once."""
    owner, cred, url = await setup(served)
    async with AsyncClient(served.url, owner) as gate, gate.login(cred["id"]):
        started = time.monotonic()
        assert await skyvern_poll(url, {"task_id": "tsk_1"}) == (200, {"verification_code": ""})
        assert time.monotonic() - started < 5


async def test_a_new_totp_url_replaces_the_old_and_delete_removes_it(served: Served) -> None:
    """PUT again gives a new totp_url (the old one is 404); DELETE removes it."""
    owner, cred, url = await setup(served)
    async with aiohttp.ClientSession(served.url) as http:
        path = f"/v1/credentials/{cred['id']}/skyvern"
        async with http.put(path, json={"api_key": SKYVERN_KEY}, headers=bearer(owner)) as r:
            fresh = (await r.json())["totp_url"]
        assert fresh != url
        assert (await skyvern_poll(url, {"task_id": "t"}))[0] == 404
        async with http.delete(path, headers=bearer(owner)) as r:
            assert r.status == 204
        assert (await skyvern_poll(fresh, {"task_id": "t"}))[0] == 404


async def test_skyverns_own_polling_code_reads_the_answers(served: Served, tmp_path: Path) -> None:
    """Skyvern's _get_otp_value_from_url signs its poll and reads a code, "not yet", a link."""
    python = await asyncio.to_thread(
        extra_env, "skyvern", [SKYVERN], "OTPGATE_REQUIRE_SKYVERN", heavy=True
    )
    owner, cred, url = await setup(served)
    assert served.smtp_port is not None
    keep = {k: v for k, v in os.environ.items() if not k.startswith("OTPGATE_")}
    env = {
        **keep,
        # Its LLM library would fetch a price list from the Internet at import: use its copy.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        # Its SSRF guard refuses loopback; a self-hosted Skyvern allows its otpgate this way.
        "ALLOWED_HOSTS": '["127.0.0.1"]',
        # Its app opens a database lazily; the poll never uses it.
        "DATABASE_STRING": f"sqlite+aiosqlite:///{tmp_path / 'skyvern.db'}",
        "SKYVERN_TELEMETRY": "false",
        "HOME": str(tmp_path),
    }

    proc = await asyncio.create_subprocess_exec(
        str(python), str(ROOT / "tests" / "skyvern_runner.py"), url, SKYVERN_KEY,
        env=env, cwd=tmp_path, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

    async def skyvern(run: dict[str, str]) -> dict[str, Any]:
        """One turn of a Skyvern run's polling, for *run*'s ids."""
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write(json.dumps(run).encode() + b"\n")
        await proc.stdin.drain()
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        if not line:
            raise AssertionError((await proc.stderr.read()).decode()[-3000:])
        return dict(json.loads(line))

    try:
        # Another agent signs in to the account: "not yet", which Skyvern takes as such.
        async with AsyncClient(served.url, owner) as gate, gate.login(cred["id"]):
            got = await skyvern({"task_id": "tsk_0"})
        assert (got["value"], got["statuses"], got["conformed"]) == (None, {"200": 1}, True)

        run = {"task_id": "tsk_1", "workflow_run_id": "wr_1"}
        await asyncio.to_thread(send_mail, served.smtp_port, cred["inbox"], otp_mail("771046"))
        got = await skyvern(run)
        assert (got["value"], got["type"], got["conformed"]) == ("771046", "totp", True)

        link = "https://acme.example/magic?token=Rt5Yu6Io7Pa8Sd9F"
        await asyncio.to_thread(send_mail, served.smtp_port, cred["inbox"], link_mail(link, "x"))
        got = await skyvern({"task_id": "tsk_2"})
        assert (got["value"], got["type"]) == (link, "magic_link")
    finally:
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 60)


async def test_readme_skyvern_example_runs(served: Served) -> None:
    """README's curl command, as it is, gives a totp_url that answers Skyvern's poll."""
    owner, cred, _ = await setup(served)
    readme = (ROOT / "README.md").read_text()
    section = readme.partition("\n### Skyvern\n")[2].partition("\n### ")[0]
    (example,) = re.findall(r"```sh\n(.+?)```", section, flags=re.S)
    env = {
        **os.environ,
        "OTPGATE_URL": served.url,
        "OTPGATE_API_KEY": owner,
        "CREDENTIAL_ID": cred["id"],
        "SKYVERN_API_KEY": SKYVERN_KEY,
    }
    proc = await asyncio.create_subprocess_exec(
        "bash", "-e", "-c", example, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    url = json.loads(out)["totp_url"]
    assert served.smtp_port is not None
    await asyncio.to_thread(send_mail, served.smtp_port, cred["inbox"], otp_mail("230958"))
    assert await skyvern_poll(url, {"task_id": "tsk_1"}) == (200, {"verification_code": "230958"})
