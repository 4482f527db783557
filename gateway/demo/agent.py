"""The demo agent: logs into the sample site's accounts in headless Chromium.

It uses only the SDK (``gateway.client``): the password and the code go
from the gateway into the page through ``fill_password`` and ``fill_code``,
so this script, like a language model driving a browser, never holds them.
What it prints is what an agent's log would hold: steps and outcomes, never
a code or a password.

``otpgate demo`` runs it (it starts the gateway and the site first); so does
``python -m gateway.demo.agent``, which takes the same options.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gateway.client import AsyncClient, Credential, Secret, fill_code, fill_password

from . import person

CHROMIUM = Path("/usr/bin/chromium")
#: Debian's chromium as the test suite drives it: headless, no sandbox (containers), quiet.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Seconds a person gets to answer (the gateway's default OTPGATE_INTERACTION_TTL).
PERSON_WAIT = 300.0
CODE_WAIT = 60.0

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Target:
    """One account to log into: its credential in the gateway and how its code comes."""

    credential_id: str
    label: str
    via: Literal["auto", "person"] = "auto"


@dataclass(frozen=True, slots=True)
class LoginReport:
    """How one login went (no code in it)."""

    label: str
    username: str
    ok: bool
    outcome: str
    source: str | None
    attempts: int
    #: The whole login: a fresh browser context, the form, the second factor.
    seconds: float
    #: From pressing "Sign in" to the site's verdict on the code (``fill_code``).
    code_seconds: float


def _how(cred: Credential, target: Target) -> str:
    if target.via == "person":
        return "a person gives the code through the gateway's link"
    if cred.authenticator is not None:
        return "the gateway computes the code from the authenticator secret it keeps"
    if cred.phone_number:
        return f"waiting for the text the site sends to {cred.phone_number}"
    return f"waiting for the mail the site sends to {cred.inbox}"


async def log_in(
    browser: Any,
    gate: AsyncClient,
    site_url: str,
    target: Target,
    say: Say,
    on_submit_url: Callable[[str], Awaitable[None]],
    *,
    attempts: int = 2,
) -> LoginReport:
    """Sign in to one account: username, password, then the second factor."""
    started = time.monotonic()
    cred = await gate.credential(target.credential_id)
    tag = f"[{cred.username} · {target.label}]"
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(site_url)
        await page.locator("#username").fill(cred.username or "")
        await fill_password(page, "#password", gate, cred)
        say(f"{tag} opened {site_url}, typed the username and the password (from the gateway)")
        say(f"{tag} pressing Sign in; {_how(cred, target)}")

        async def resend() -> None:
            if await page.locator("#resend").count():
                await page.locator("#resend").click()

        result = await fill_code(
            page,
            "#code",
            gate,
            cred,
            via=target.via,
            trigger=lambda: page.locator("#sign-in").click(),
            submit="#verify",
            accepted="#welcome",
            rejected="#code-error",
            attempts=attempts,
            resend=resend,
            wait=PERSON_WAIT if target.via == "person" else CODE_WAIT,
            prompt=f"Type the code that Acme Cloud texted you for {cred.username}",
            on_submit_url=on_submit_url,
        )
        if result.ok:
            welcome = await page.locator("#welcome").inner_text()
            say(
                f"{tag} the code ({result.source}) went from the gateway into the page: "
                f"the site accepted it and says {welcome!r}"
                + (f" (after {result.attempts} tries)" if result.attempts > 1 else "")
            )
        else:
            say(f"{tag} login failed: {result.outcome} after {result.attempts} tries")
    finally:
        await context.close()
    seconds = time.monotonic() - started
    say(f"{tag} took {seconds:.2f} s ({result.seconds:.2f} s from Sign in to the verdict)")
    return LoginReport(
        target.label,
        cred.username or "",
        result.ok,
        result.outcome,
        result.source,
        result.attempts,
        round(seconds, 3),
        result.seconds,
    )


async def run_agent(
    gateway_url: str,
    api_key: Secret,
    site_url: str,
    targets: list[Target],
    *,
    say: Say,
    auto: bool,
    phone_url: str,
    chromium: Path = CHROMIUM,
    before_each: Callable[[Target], Awaitable[None]] | None = None,
) -> list[LoginReport]:
    """Log into every target in turn; ``auto``: a second page plays the person."""
    from playwright.async_api import async_playwright

    reports: list[LoginReport] = []
    async with AsyncClient(gateway_url, api_key) as gate, async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        say(f"[agent] headless Chromium {browser.version} started")

        async def on_submit_url(url: str) -> None:
            if auto:
                say("[agent] asked a person for the code; the link went to them (--auto)")
                await person.answer(browser, phone_url, url, say)
                return
            say(
                "[agent] a person must give this code. As that person:\n"
                f"          1. read the code the site texted to your phone: {phone_url}\n"
                f"          2. open {url} and type it (the link works once, for 5 minutes)\n"
                "        waiting for you..."
            )

        try:
            for target in targets:
                if before_each is not None:
                    await before_each(target)
                reports.append(await log_in(browser, gate, site_url, target, say, on_submit_url))
        finally:
            await browser.close()
    return reports


def main() -> int:
    from .runner import main as demo_main  # the runner imports this module

    return demo_main()


if __name__ == "__main__":
    raise SystemExit(main())
