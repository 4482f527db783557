"""otpgate's Browser Use actions, registered in the real ``browser-use`` package, against Chromium.

Browser Use pins exact versions (pydantic, mcp...) that the test tools do
not share, so it runs in an environment of its own (``helpers.extra_env``:
``pip install -e '.[browser-use]'``, cached under ``.cache/``).  The gateway
and a small sign-in site run here on loopback; tests/browser_use_runner.py
runs the actions there, through Browser Use's registry and its CDP session
with Debian's Chromium, with no model: each action is executed as an
agent's step executes it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
import pytest
from aiohttp import web

from .helpers import (
    CHROMIUM,
    ROOT,
    Served,
    bearer,
    extra_env,
    link_mail,
    listening,
    need_browser,
    otp_mail,
    owner_and_credential,
    port_of,
    served_on_loopback,
)

REQUIRE = "OTPGATE_REQUIRE_BROWSER_USE"


class Site:
    """A sign-in page that mails its codes and links to the account's otpgate inbox.

    Its first mailed code is refused ("expired", a new one is mailed), as sites do.
    ``seen`` records each verdict with whether the typed code was the one expected.
    """

    def __init__(self, inbox: str, smtp_port: int) -> None:
        self.inbox, self.smtp_port = inbox, smtp_port
        self.expected = ""
        self.refuse_next = False
        self.person_code = ""
        self.token = ""
        self.typed: list[str] = []
        self.seen: list[str] = []
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/login", self.login)
        app.router.add_post("/verify", self.verify)
        app.router.add_get("/phone", self.phone)
        app.router.add_get("/email-me-a-link", self.email_me_a_link)
        app.router.add_get("/magic", self.magic)
        app.router.add_get("/welcome", self.welcome)
        return app

    async def mail(self, msg: EmailMessage) -> None:
        await aiosmtplib.send(
            msg, hostname="127.0.0.1", port=self.smtp_port, recipients=[self.inbox]
        )

    @staticmethod
    def page(body: str) -> web.Response:
        return web.Response(
            text=f"<!doctype html><html><body>{body}</body></html>", content_type="text/html"
        )

    def form(self, note: str = "") -> web.Response:
        return self.page(
            f"<p>{note}</p><form method=post action=/verify><label for=code>Code</label>"
            "<input id=code name=code autocomplete=one-time-code><button>Verify</button></form>"
        )

    async def login(self, request: web.Request) -> web.Response:
        self.expected = f"{secrets.randbelow(10**6):06d}"
        if request.query.get("via") == "person":
            self.person_code = self.expected  # shown on the person's phone
            return self.form("Enter the code from your phone")
        self.refuse_next = True
        await self.mail(otp_mail(self.expected))
        return self.form("We mailed you a code")

    async def verify(self, request: web.Request) -> web.Response:
        code = str((await request.post()).get("code", ""))
        self.typed.append(code)
        right = code == self.expected
        if self.refuse_next:
            self.refuse_next = False
            self.seen.append(f"refused {'right' if right else 'wrong'}")
            self.expected = f"{secrets.randbelow(10**6):06d}"
            await self.mail(otp_mail(self.expected))
            return self.form("That code has expired: we mailed you a new one")
        self.seen.append("accepted" if right else "wrong")
        return self.page("<h1>Welcome</h1>" if right else "<p>Wrong code</p>")

    async def phone(self, request: web.Request) -> web.Response:
        return web.Response(text=self.person_code)

    async def email_me_a_link(self, request: web.Request) -> web.Response:
        self.token = secrets.token_urlsafe(16)
        await self.mail(link_mail(f"{self.url}/magic?token={self.token}", self.inbox))
        return self.page("<p>Check your mail</p>")

    async def magic(self, request: web.Request) -> web.Response:
        right = secrets.compare_digest(request.query.get("token", ""), self.token)
        self.seen.append("link accepted" if right else "link wrong")
        raise web.HTTPSeeOther("/welcome")

    async def welcome(self, request: web.Request) -> web.Response:
        return self.page("<h1>Welcome</h1>")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """A real gateway on loopback (HTTP and SMTP), with its background workers running."""
    async with served_on_loopback(
        tmp_path, background=True, smtp=True, OTPGATE_INTERACTION_TTL="60"
    ) as s:
        yield s


@pytest.fixture
async def site_on(served: Served) -> AsyncIterator[tuple[Site, str, str]]:
    """The site on loopback, for one credential; its id and an agent key limited to it."""
    async with aiohttp.ClientSession(served.url) as http:
        owner, cred = await owner_and_credential(http)
        key = {"name": "browser-use", "role": "agent", "credential_ids": [cred["id"]]}
        async with http.post("/v1/keys", json=key, headers=bearer(owner)) as r:
            agent_key = (await r.json())["key"]
    assert served.smtp_port is not None
    site = Site(cred["inbox"], served.smtp_port)
    sock = listening()
    site.url = f"http://127.0.0.1:{port_of(sock)}"
    runner = web.AppRunner(site.app())
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield site, cred["id"], agent_key
    finally:
        await runner.cleanup()


def browser_use_python() -> Path:
    need_browser()
    return extra_env("browser-use", ["-e", f"{ROOT}[browser-use]"], REQUIRE)


def runner_env(tmp_path: Path) -> dict[str, str]:
    """Browser Use without its telemetry, cloud sync or version check: nothing leaves loopback."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("OTPGATE_")}
    return {
        **keep,
        "ANONYMIZED_TELEMETRY": "false",
        "BROWSER_USE_CLOUD_SYNC": "false",
        "BROWSER_USE_VERSION_CHECK": "false",
        "BROWSER_USE_CONFIG_DIR": str(tmp_path / "browseruse"),
    }


async def run_python(python: Path, args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(python), *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_actions_type_codes_and_open_links_in_chromium(
    served: Served, site_on: tuple[Site, str, str], tmp_path: Path
) -> None:
    """Each action does its work in the page and tells the model only whether it worked."""
    python = await asyncio.to_thread(browser_use_python)
    site, cred, key = site_on
    args = {
        "gateway": served.url,
        "key": key,
        "credential": cred,
        "site": site.url,
        "chromium": str(CHROMIUM),
    }
    runner = str(ROOT / "tests" / "browser_use_runner.py")
    code, out, err = await run_python(python, [runner, json.dumps(args)], runner_env(tmp_path))
    assert code == 0, err[-3000:]
    results: list[dict[str, Any]] = [json.loads(line) for line in out.splitlines()]
    assert [r["action"] for r in results] == [
        "otpgate_fill_code",
        "otpgate_fill_code",
        "otpgate_open_link",
        "otpgate_ask_person",
        "otpgate_ask_person",
        "otpgate_open_link",
    ]
    assert [r["error"] is None for r in results] == [True] * 5 + [False]
    assert "from email" in results[0]["content"]
    assert "approved" in results[4]["content"]
    assert "No sign-in link arrived" in results[5]["error"]
    # The site: the first code refused (it was the right one), the newer one taken; the
    # link opened by this browser; the person's code typed.
    assert site.seen == ["refused right", "accepted", "link accepted", "accepted"]
    # What the model reads holds none of the codes nor the link's token.
    for secret in [*site.typed, site.token]:
        assert secret not in out


async def test_readme_browser_use_example_runs(
    served: Served, site_on: tuple[Site, str, str], tmp_path: Path
) -> None:
    """README's Browser Use example, as it is, registers the three actions in a Tools."""
    python = await asyncio.to_thread(browser_use_python)
    _, _, key = site_on
    readme = (ROOT / "README.md").read_text()
    section = readme.partition("\n### Browser Use\n")[2].partition("\n### ")[0]
    (example,) = re.findall(r"```python\n(.+?)```", section, flags=re.S)
    script = tmp_path / "browser_use_example.py"
    script.write_text(example)
    env = {**runner_env(tmp_path), "OTPGATE_URL": served.url, "OTPGATE_API_KEY": key}
    code, out, err = await run_python(python, [str(script)], env)
    assert code == 0, err[-3000:]
    assert out.split() == ["otpgate_ask_person", "otpgate_fill_code", "otpgate_open_link"]
