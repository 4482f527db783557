"""Run otpgate's Browser Use actions in a real Browser Use session, without a model.

Started by tests/test_browser_use.py with the Python of the browser-use
environment (the browser-use extra pins versions the test tools conflict
with).  Arguments: a JSON object with ``gateway``, ``key``, ``credential``,
``site`` and ``chromium``.  It registers the actions in Browser Use's own
``Tools`` registry, drives Debian's Chromium through Browser Use's CDP
session, and runs each action the way an agent's step does
(``registry.execute_action`` with the session), printing one JSON line per
action: its name, ``error`` and ``content`` (what the model would read).
"""

import asyncio
import json
import sys
import tempfile

import aiohttp
from browser_use import BrowserProfile, BrowserSession, Tools
from browser_use.browser.events import NavigateToUrlEvent

from gateway.agents.browser_use import register
from gateway.client import AsyncClient


async def index_of(session: BrowserSession, element_id: str) -> int:
    """The index Browser Use gives the element with this id (what a model would pick)."""
    await session.get_browser_state_summary(include_screenshot=False)
    for index, node in (await session.get_selector_map()).items():
        if node.attributes.get("id") == element_id:
            return index
    raise AssertionError(f"no #{element_id} among the interactive elements")


async def goto(session: BrowserSession, url: str) -> None:
    event = session.event_bus.dispatch(NavigateToUrlEvent(url=url))
    await event
    await event.event_result(raise_if_any=True, raise_if_none=False)


async def main(args: dict[str, str]) -> None:
    site = args["site"]

    async def person(submit_url: str) -> None:
        """The person: reads the code on their phone (the site's page for it), or approves."""
        async with aiohttp.ClientSession() as http:
            if "approval" in person.mode:
                async with http.post(submit_url, json={"decision": "approved"}) as r:
                    assert r.status == 204
                return
            async with http.get(f"{site}/phone") as r:
                code = await r.text()
            async with http.post(submit_url, json={"code": code}) as r:
                assert r.status == 204

    person.mode = ""  # type: ignore[attr-defined]
    tools = Tools()
    gate = AsyncClient(args["gateway"], args["key"])
    register(tools, gate, on_submit_url=person)
    profile = BrowserProfile(
        executable_path=args["chromium"],
        headless=True,
        chromium_sandbox=False,
        enable_default_extensions=False,
        user_data_dir=tempfile.mkdtemp(prefix="otpgate-bu-"),
    )
    session = BrowserSession(browser_profile=profile)
    await session.start()
    cred = args["credential"]

    async def act(name: str, **params: object) -> None:
        result = await tools.registry.execute_action(name, params, browser_session=session)
        line = {"action": name, "error": result.error, "content": result.extracted_content}
        print(json.dumps(line), flush=True)

    try:
        # A code by mail: the site refuses its first one and mails another.
        await goto(session, f"{site}/login")
        await act("otpgate_fill_code", credential_id=cred, index=await index_of(session, "code"))
        await act("otpgate_fill_code", credential_id=cred, index=await index_of(session, "code"))
        # A sign-in link by mail.
        await goto(session, f"{site}/email-me-a-link")
        await act("otpgate_open_link", credential_id=cred)
        # A person gives the code, then a person approves.
        await goto(session, f"{site}/login?via=person")
        person.mode = "code"  # type: ignore[attr-defined]
        index = await index_of(session, "code")
        await act("otpgate_ask_person", credential_id=cred, kind="code", index=index, wait=30)
        person.mode = "approval"  # type: ignore[attr-defined]
        await act("otpgate_ask_person", credential_id=cred, kind="approval", match="17", wait=30)
        # Nothing comes: a plain failure, quickly.
        await act("otpgate_open_link", credential_id=cred, wait=1)
    finally:
        await gate.close()
        await session.kill()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
