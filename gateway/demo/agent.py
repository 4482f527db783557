"""The demo agent: logs into the sample site's accounts in headless Chromium.

It uses only the SDK (``gateway.client``): the password, the code and the
sign-in link go from the gateway into the page through ``fill_password``,
``fill_code`` and ``open_link``, so this script, like a language model
driving a browser, never holds them.  What it prints is what an agent's log
would hold: steps and outcomes, never a code, a link or a password.

Every sign-in is a login (``async with gate.login(cred) as login:``): the
account's codes and links go to that login alone, so two agents signing in
to the same account at once take turns (the second is told
``LoginInProgress`` and queues with ``wait``) instead of taking each
other's codes.

``otpgate demo`` runs it (it starts the gateway and the site first); so does
``python -m gateway.demo.agent``, which takes the same options.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from gateway.client import (
    AsyncClient,
    Credential,
    Login,
    LoginInProgress,
    Secret,
    fill_code,
    fill_password,
    open_link,
)

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
#: A login lasts at most this long; a second agent queues at most as long.
LOGIN_TTL = 360
LOGIN_WAIT = 300.0

Say = Callable[[str], None]
Kind = Literal["code", "person", "link", "push"]
AskPerson = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Target:
    """One account to log into: its credential in the gateway and how its second factor comes.

    ``code``: a code the gateway gets itself (authenticator, mail, text);
    ``person``: a code a person gives; ``link``: a mailed sign-in link;
    ``push``: a push prompt a person approves, matching a number.
    ``agents``: how many agents sign in to it at the same time.
    """

    credential_id: str
    label: str
    kind: Kind = "code"
    agents: int = 1


@dataclass(frozen=True, slots=True)
class LoginReport:
    """How one login went (no code in it)."""

    label: str
    username: str
    ok: bool
    outcome: str
    #: ``totp``, ``email``, ``sms``, ``user`` (a person's code), ``link`` or ``approval``.
    source: str | None
    attempts: int
    #: The whole login: a fresh browser context, the form, the wait for the account, the factor.
    seconds: float
    #: From pressing "Sign in" to the site's verdict on the second factor.
    code_seconds: float
    #: Seconds spent queued behind another agent's login to the same account.
    queued: float = 0.0
    agent: str = "agent"
    #: The gateway's login: when it opened and finished (the gateway's clock).
    opened_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Factor:
    ok: bool
    outcome: str
    source: str | None
    attempts: int
    seconds: float


@dataclass(frozen=True, slots=True)
class People:
    """Who answers for a person: one callback per kind of request (see ``person``)."""

    give_code: AskPerson
    approve: AskPerson


def _how(cred: Credential, target: Target) -> str:
    if target.kind == "person":
        return "a person gives the code through the gateway's link"
    if target.kind == "link":
        return f"waiting for the sign-in link the site mails to {cred.inbox}"
    if target.kind == "push":
        return "a person approves the push on their phone, matching the number"
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
    people: People,
    *,
    attempts: int = 2,
    agent: str = "agent",
) -> LoginReport:
    """Sign in to one account: username, password, then the second factor, inside a login."""
    started = time.monotonic()
    cred = await gate.credential(target.credential_id)
    who = f" · {agent}" if agent != "agent" else ""
    tag = f"[{cred.username} · {target.label}{who}]"
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(site_url)
        await page.locator("#username").fill(cred.username or "")
        await fill_password(page, "#password", gate, cred)
        say(f"{tag} opened {site_url}, typed the username and the password (from the gateway)")
        async with contextlib.AsyncExitStack() as stack:
            login, queued = await _open_login(stack, gate, cred, tag, say)
            say(f"{tag} pressing Sign in; {_how(cred, target)}")
            result = await _second_factor(page, gate, cred, login, target, people, attempts)
            if result.ok:
                welcome = await page.locator("#welcome").inner_text()
                tries = f" (after {result.attempts} tries)" if result.attempts > 1 else ""
                say(f"{tag} {_done(result.source)}: the site says {welcome!r}{tries}")
            else:
                say(f"{tag} login failed: {result.outcome} after {result.attempts} tries")
                await login.finish("failed")
        # Leaving the block finished the login (succeeded): the account is free again.
    finally:
        await context.close()
    seconds = time.monotonic() - started
    say(
        f"{tag} took {seconds:.2f} s ({result.seconds:.2f} s from Sign in to the verdict); "
        f"login {login.status}"
    )
    return LoginReport(
        target.label,
        cred.username or "",
        result.ok,
        result.outcome,
        result.source,
        result.attempts,
        round(seconds, 3),
        result.seconds,
        round(queued, 3),
        agent,
        login.started_at,
        login.finished_at,
    )


async def _open_login(
    stack: contextlib.AsyncExitStack, gate: AsyncClient, cred: Credential, tag: str, say: Say
) -> tuple[Login, float]:
    """Open a login on the account, queueing behind another agent's if one is open.

    The login is finished when *stack* closes: as succeeded, or as failed on
    an exception.  Returns it and the seconds spent queueing.
    """
    try:
        return await stack.enter_async_context(gate.login(cred, ttl=LOGIN_TTL)), 0.0
    except LoginInProgress:
        say(f"{tag} another agent is signing in to this account: queueing behind its login")
    asked = time.monotonic()
    login = await stack.enter_async_context(gate.login(cred, ttl=LOGIN_TTL, wait=LOGIN_WAIT))
    queued = time.monotonic() - asked
    say(f"{tag} the other agent's login finished; this one opened after {queued:.2f} s")
    return login, queued


def _done(source: str | None) -> str:
    if source == "link":
        return "the sign-in link went from the gateway into this browser page"
    if source == "approval":
        return "the person approved the push"
    return f"the code ({source}) went from the gateway into the page"


async def _second_factor(
    page: Any,
    gate: AsyncClient,
    cred: Credential,
    login: Login,
    target: Target,
    people: People,
    attempts: int,
) -> _Factor:
    sign_in = page.locator("#sign-in")
    if target.kind == "link":
        opened = await open_link(
            page,
            gate,
            login,
            trigger=sign_in.click,
            wait=CODE_WAIT,
            accepted="#welcome",
            rejected="#link-error",
        )
        return _Factor(opened.ok, opened.outcome, "link", 1, opened.seconds)
    if target.kind == "push":
        return await _push(page, gate, cred, people)

    async def resend() -> None:
        if await page.locator("#resend").count():
            await page.locator("#resend").click()

    filled = await fill_code(
        page,
        "#code",
        gate,
        cred,
        via="person" if target.kind == "person" else "auto",
        login=login,
        trigger=sign_in.click,
        submit="#verify",
        accepted="#welcome",
        rejected="#code-error",
        attempts=attempts,
        resend=resend,
        wait=PERSON_WAIT if target.kind == "person" else CODE_WAIT,
        prompt=f"Type the code that Acme Cloud texted you for {cred.username}",
        on_submit_url=people.give_code,
    )
    return _Factor(filled.ok, filled.outcome, filled.source, filled.attempts, filled.seconds)


async def _push(page: Any, gate: AsyncClient, cred: Credential, people: People) -> _Factor:
    """Press Sign in, read the number on the screen, ask a person to approve, then Continue."""
    started = time.monotonic()
    await page.locator("#sign-in").click()
    number = (await page.locator("#match").inner_text()).strip()
    decided = await gate.request_approval(
        cred,
        match=number,
        prompt=f"Approve the Acme Cloud sign-in for {cred.username} on your phone",
        wait=PERSON_WAIT,
        on_submit_url=people.approve,
    )
    if not decided.approved:
        return _Factor(False, decided.status, "approval", 1, _since(started))
    await page.locator("#continue").click()
    verdict = page.locator("#welcome").or_(page.locator("#push-error"))
    await verdict.first.wait_for(state="visible", timeout=15_000)
    ok = await page.locator("#welcome").count() > 0
    return _Factor(ok, "accepted" if ok else "rejected", "approval", 1, _since(started))


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)


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
        people = _people(browser, auto=auto, phone_url=phone_url, say=say)
        try:
            for target in targets:
                if before_each is not None:
                    await before_each(target)
                if target.agents == 1:
                    reports.append(await log_in(browser, gate, site_url, target, say, people))
                    continue
                say(f"[agent] {target.agents} agents sign in to the same account at once")
                reports += await asyncio.gather(
                    *(
                        log_in(browser, gate, site_url, target, say, people, agent=f"agent {n}")
                        for n in range(1, target.agents + 1)
                    )
                )
        finally:
            await browser.close()
    return reports


def _people(browser: Any, *, auto: bool, phone_url: str, say: Say) -> People:
    """The person's side: a second browser page (``auto``), or instructions for a human."""

    async def give_code(url: str) -> None:
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

    async def approve(url: str) -> None:
        if auto:
            say("[agent] asked a person to approve the sign-in; the link went to them (--auto)")
            await person.approve(browser, phone_url, url, say)
            return
        say(
            "[agent] a person must approve this sign-in. As that person:\n"
            f"          1. open {url}: it shows the number on the agent's screen\n"
            f"          2. tap that number in the site's app on your phone: {phone_url}\n"
            "          3. press Approved on the first page\n"
            "        waiting for you..."
        )

    return People(give_code, approve)


def main() -> int:
    from .runner import main as demo_main  # the runner imports this module

    return demo_main()


if __name__ == "__main__":
    raise SystemExit(main())
