"""A person answers a submit URL in a real headless Chromium while an agent long-polls.

The gateway is served on a loopback port with ``OTPGATE_PUBLIC_URL`` set to
that address, so ``submit_url`` points at it and the browser's form post
passes the Origin check exactly as it would in production.  Chromium is
Debian's ``/usr/bin/chromium`` driven by Playwright (never a downloaded
browser).  Without either the test skips with the reason, unless
``OTPGATE_REQUIRE_BROWSER=1`` makes that a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.demo.agent import CHROMIUM, CHROMIUM_ARGS

from .helpers import ADMIN, Served, bearer, need_browser, parked, served_on_loopback


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """The real app on a loopback port whose address is also the public URL."""
    async with served_on_loopback(tmp_path) as s:
        yield s


async def _post(session: aiohttp.ClientSession, url: str, body: Any, h: dict[str, str]) -> Any:
    async with session.post(url, json=body, headers=h) as resp:
        assert resp.status == 201, await resp.text()
        return await resp.json()


async def _get(session: aiohttp.ClientSession, url: str, h: dict[str, str]) -> tuple[int, Any]:
    async with session.get(url, headers=h) as resp:
        return resp.status, (await resp.json() if resp.status == 200 else None)


NAME = "Bank <b>Login</b>"
PROMPT = '<script>alert("pwned")</script> Type the 6 digits we texted you'


async def _answer_in_browser(context: Any, submit_url: str, code: str) -> None:
    """Open the submit URL like a person on a phone, check what it shows, type and send."""
    page = await context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    shown = await page.goto(submit_url)
    assert shown is not None and shown.status == 200
    assert await page.inner_text("#credential") == NAME
    assert await page.inner_text("#prompt") == PROMPT  # shown as text, not run
    assert await page.locator("script").count() == 0
    assert "min" in await page.inner_text("#time-left")
    field = page.locator("#code")
    assert await field.get_attribute("inputmode") == "numeric"
    assert await field.get_attribute("autocomplete") == "one-time-code"
    # The nonce-allowed inline style applied: a large input that fits the phone's width.
    assert await field.evaluate("e => getComputedStyle(e).fontSize") == "32px"
    box = await field.bounding_box()
    assert box is not None and box["width"] <= 390
    await field.fill(code)
    async with page.expect_navigation() as nav:
        await page.click("button[type=submit]")
    answered = await nav.value
    assert answered is not None and answered.status == 200
    assert await page.inner_text("#title") == "Code sent"
    # The token was single-use: the same link now says it was answered.
    again = await page.goto(submit_url)
    assert again is not None and again.status == 409
    assert await page.inner_text("#title") == "Already answered"
    assert dialogs == []
    await page.close()


async def test_a_person_answers_in_chromium_and_the_waiting_agent_gets_it(served: Served) -> None:
    """The page shows name and prompt as text; the typed code reaches the long-polling agent."""
    need_browser()
    from playwright.async_api import async_playwright

    async with aiohttp.ClientSession() as session:
        tenant = await _post(session, f"{served.url}/v1/tenants", {"name": "acme"}, ADMIN)
        h = bearer(tenant["api_key"])
        cred = (await _post(session, f"{served.url}/v1/credentials", {"name": NAME}, h))["id"]
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                phone = await browser.new_context(
                    viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
                )
                # Round 1: the agent waits on the interaction; round 2: on the credential.
                for code, poll in (
                    ("482915", "/v1/interactions/{id}/code?wait=30"),
                    ("A7-x9", "/v1/credentials/{cred}/code?wait=30"),
                ):
                    url = f"{served.url}/v1/credentials/{cred}/interactions"
                    created = await _post(session, url, {"prompt": PROMPT}, h)
                    assert created["submit_url"].startswith(f"{served.url}/submit/")
                    poll_url = served.url + poll.format(id=created["id"], cred=cred)
                    waiting = asyncio.create_task(_get(session, poll_url, h))
                    await parked(served.gateway, created["id"] if "{id}" in poll else cred)
                    assert not waiting.done()
                    await _answer_in_browser(phone, created["submit_url"], code)
                    status, body = await asyncio.wait_for(waiting, 10)
                    assert (status, body["code"]) == (200, code)
                    # Never handed out a second time, by either endpoint.
                    assert await _get(session, f"{served.url}/v1/credentials/{cred}/code", h) == (
                        204,
                        None,
                    )
                    late = f"{served.url}/v1/interactions/{created['id']}/code"
                    assert await _get(session, late, h) == (410, None)
            finally:
                await browser.close()
