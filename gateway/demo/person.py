"""The person in the demo, played by a second browser page (``--auto``).

Two things a person does for an agent, on a phone-sized page, exactly as a
human would:

* ``answer``: read the code the site texted to their own phone and type it
  into the gateway's ``submit_url`` page;
* ``approve``: open the gateway's ``submit_url`` page, read the number the
  agent's sign-in screen shows, tap that number in the site's app on their
  phone (which approves the push), and press "Approved" on the gateway's
  page, so the agent goes on.  If the phone's prompt does not offer that
  number, the sign-in is not theirs: they press "Denied".

Nothing here prints or logs the code.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

Say = Callable[[str], None]


@contextlib.asynccontextmanager
async def _phone(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def _open(page: Any, submit_url: str) -> None:
    shown = await page.goto(submit_url)
    if shown is None or shown.status != 200:
        raise RuntimeError(f"the submit page answered {shown.status if shown else 'nothing'}")


async def answer(browser: Any, phone_url: str, submit_url: str, say: Say) -> None:
    """Read the newest text on the person's phone, then answer ``submit_url`` with it."""
    async with _phone(browser) as page:
        await page.goto(phone_url)
        code = (await page.locator("#latest-code").inner_text()).strip()
        say("[person] read the text the site sent to their own phone")
        await _open(page, submit_url)
        await page.locator("#code").fill(code)
        async with page.expect_navigation():
            await page.locator("button[type=submit]").click()
        title = await page.locator("#title").inner_text()
        if title != "Code sent":
            raise RuntimeError(f"the submit page said {title!r}")
        say("[person] typed it into the gateway's page from the link; the page said 'Code sent'")


async def approve(browser: Any, phone_url: str, submit_url: str, say: Say) -> None:
    """Match the number on the gateway's page in the phone's push prompt, then press Approved."""
    async with _phone(browser) as page:
        await _open(page, submit_url)
        number = (await page.get_by_label("Number to match").inner_text()).strip()
        say(f"[person] the gateway's page asks to approve a sign-in showing the number {number}")
        await page.goto(phone_url)
        prompt = page.locator("section.push").last
        offered = page.locator("section.push").last.get_by_role("button", name=number, exact=True)
        matches = await prompt.count() > 0 and await offered.count() == 1
        if matches:
            async with page.expect_navigation():
                await offered.click()
            say(f"[person] tapped {number} in the site's app on their phone")
        await _open(page, submit_url)
        decision = "Approved" if matches else "Denied"
        async with page.expect_navigation():
            await page.get_by_role("button", name=decision).click()
        title = await page.locator("#title").inner_text()
        if title != decision:
            raise RuntimeError(f"the submit page said {title!r}")
        say(f"[person] pressed {decision!r} on the gateway's page")
