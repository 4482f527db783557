"""The person in the demo's fourth login, played by a second browser page (``--auto``).

A person who owns the account's phone reads the code the site texted them
and types it into the gateway's ``submit_url`` page: exactly what a human
does, on a phone-sized page.  Nothing here prints or logs the code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


async def answer(browser: Any, phone_url: str, submit_url: str, say: Callable[[str], None]) -> None:
    """Read the newest text on the person's phone, then answer ``submit_url`` with it."""
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        page = await context.new_page()
        await page.goto(phone_url)
        code = (await page.locator("#latest-code").inner_text()).strip()
        say("[person] read the text the site sent to their own phone")
        shown = await page.goto(submit_url)
        if shown is None or shown.status != 200:
            raise RuntimeError(f"the submit page answered {shown.status if shown else 'nothing'}")
        await page.locator("#code").fill(code)
        async with page.expect_navigation():
            await page.locator("button[type=submit]").click()
        title = await page.locator("#title").inner_text()
        if title != "Code sent":
            raise RuntimeError(f"the submit page said {title!r}")
        say("[person] typed it into the gateway's page from the link; the page said 'Code sent'")
    finally:
        await context.close()
