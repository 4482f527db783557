"""Type a code (or a password) from the gateway straight into a Playwright page.

The point is that the code goes from the gateway into the page without
passing through the agent's language model, which could leak or mistype
it: the helper fetches it, fills the field, presses the button, and tells
the caller only whether the site took it.

    async with AsyncClient(url, key) as gate:
        await page.fill("#username", cred.username)
        await fill_password(page, "#password", gate, cred)
        result = await fill_code(
            page, "#code", gate, cred,
            trigger=lambda: page.click("#sign-in"),   # makes the site send the code
            submit="#verify", accepted="#welcome", rejected=".error",
        )
        print(result)   # FillResult(ok=True, outcome='accepted', source='email', ...)

Whichever way the credential gets its code works the same: its
authenticator (TOTP/HOTP), its inbox, its phone number, or (``via="person"``)
a person, who is sent the interaction's ``submit_url`` through
``on_submit_url`` (printed when none is given).  Playwright is not a
dependency of the SDK: ``page`` is any Playwright ``Page`` (async API), and
nothing here imports Playwright.  ``accepted`` and ``rejected`` are CSS
selectors.  Playwright's tracing, if you turn it on, records what was typed.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Literal

from .aio import AsyncClient, CredentialRef, PendingCode
from .errors import CodeTimeout, Expired
from .models import Code

log = logging.getLogger("otpgate.client")

#: The attribute put on refusal messages already on the page before a submit,
#: so that only a fresh one counts as this code's refusal.
_SEEN = "data-otpgate-seen"


@dataclass(frozen=True, slots=True)
class FillResult:
    """What happened, without the code.

    ``outcome`` is ``accepted`` (the ``accepted`` selector showed), ``typed``
    (no selectors given: the code was typed and submitted), ``rejected`` (the
    site refused every try), ``no_code`` (none came within ``wait``),
    ``expired`` (the person's request expired unanswered) or ``no_verdict``
    (neither selector showed within ``settle`` seconds).
    """

    ok: bool
    outcome: str
    source: str | None
    attempts: int
    seconds: float

    def __bool__(self) -> bool:
        return self.ok


async def fill_password(
    page: Any, selector: str, client: AsyncClient, credential: CredentialRef
) -> None:
    """Fill the credential's password (from the gateway) into ``selector``."""
    secret = await client.password(credential)
    await page.locator(selector).fill(secret.reveal())


async def fill_code(
    page: Any,
    selector: str,
    client: AsyncClient,
    credential: CredentialRef,
    *,
    via: Literal["auto", "person"] = "auto",
    trigger: Callable[[], Awaitable[object]] | None = None,
    pending: PendingCode | None = None,
    submit: str | None = None,
    accepted: str | None = None,
    rejected: str | None = None,
    attempts: int = 1,
    resend: Callable[[], Awaitable[object]] | None = None,
    wait: float = 120.0,
    min_validity: int = 3,
    settle: float = 15.0,
    prompt: str | None = None,
    on_submit_url: Callable[[str], Awaitable[object] | object] | None = None,
) -> FillResult:
    """Get the credential's code, type it into ``selector``, and say whether it worked.

    ``trigger`` is the action that makes the site send a code (clicking
    "Sign in"): it runs inside ``expect_code``, so a code left over from an
    earlier login is never typed.  Without it, pass the ``pending`` of your
    own ``expect_code`` block, or the newest code not handed out yet is
    taken.  ``submit`` is clicked after filling (None: press Enter in the
    field).  With ``accepted``/``rejected`` the helper waits up to ``settle``
    seconds for the site's verdict; on a refusal, up to ``attempts`` tries
    in all, each with a newer code (``PendingCode.reject``: a later TOTP
    step, a code received after the refusal), calling ``resend`` first if
    given (the site's "send a new code" button).  ``wait`` bounds each try's
    wait for a code; TOTP codes are valid ``min_validity`` more seconds.
    ``via="person"`` opens an interaction per try with ``prompt`` and hands
    its ``submit_url`` to ``on_submit_url`` (or prints it).
    """
    started = time.monotonic()
    source: str | None = None
    tries = 0

    def result(ok: bool, outcome: str) -> FillResult:
        return FillResult(ok, outcome, source, tries, round(time.monotonic() - started, 3))

    async with AsyncExitStack() as stack:
        if via == "auto" and pending is None and trigger is not None:
            pending = await stack.enter_async_context(client.expect_code(credential))
        if trigger is not None:
            await trigger()
        while tries < max(1, attempts):
            tries += 1
            if tries > 1 and resend is not None:
                await resend()
            try:
                code = await _get_code(
                    client, credential, via, pending, wait, min_validity, prompt, on_submit_url
                )
            except CodeTimeout:
                log.info("no code came within %g s", wait)
                return result(False, "no_code")
            except Expired:
                log.info("the person's request expired unanswered")
                return result(False, "expired")
            source = code.source
            verdict = await _type_and_check(
                page, selector, code, submit, accepted, rejected, settle
            )
            del code
            if verdict is None:
                watched = accepted is not None or rejected is not None
                return result(not watched, "no_verdict" if watched else "typed")
            if verdict:
                return result(True, "accepted")
            log.info("the site refused the code (try %d of %d)", tries, attempts)
            if pending is not None:
                await pending.reject()
        return result(False, "rejected")


async def _get_code(
    client: AsyncClient,
    credential: CredentialRef,
    via: str,
    pending: PendingCode | None,
    wait: float,
    min_validity: int,
    prompt: str | None,
    on_submit_url: Callable[[str], Awaitable[object] | object] | None,
) -> Code:
    if via == "person":
        interaction = await client.create_interaction(credential, prompt=prompt)
        assert interaction.submit_url is not None
        if on_submit_url is None:
            print(
                f"otpgate: a person must give the code; open {interaction.submit_url}", flush=True
            )
        else:
            outcome = on_submit_url(interaction.submit_url)
            if inspect.isawaitable(outcome):
                await outcome
        got = await client.interaction_code(interaction, wait=wait)
        if got is None:
            raise CodeTimeout(f"no answer within {wait:g} s")
        return got
    if pending is not None:
        return await pending.code(wait=wait, min_validity=min_validity)
    got = await client.code(credential, wait=wait, min_validity=min_validity)
    if got is None:
        raise CodeTimeout(f"no code within {wait:g} s")
    return got


async def _type_and_check(
    page: Any,
    selector: str,
    code: Code,
    submit: str | None,
    accepted: str | None,
    rejected: str | None,
    settle: float,
) -> bool | None:
    """Fill and submit; True/False for the site's verdict, None when there is none to wait for."""
    if rejected is not None:
        # A refusal already showing (from the previous try) must not count for this one.
        await page.evaluate(
            f"sel => document.querySelectorAll(sel).forEach(e => e.setAttribute('{_SEEN}', ''))",
            rejected,
        )
    field = page.locator(selector)
    await field.fill(code.value)
    if submit is None:
        await field.press("Enter")
    else:
        await page.locator(submit).click()
    if accepted is None and rejected is None:
        return None
    verdicts = []
    if accepted is not None:
        verdicts.append(page.locator(accepted))
    if rejected is not None:
        verdicts.append(page.locator(f":is({rejected}):not([{_SEEN}])"))
    either = verdicts[0] if len(verdicts) == 1 else verdicts[0].or_(verdicts[1])
    try:
        await either.first.wait_for(state="visible", timeout=settle * 1000)
    except Exception as exc:  # Playwright's TimeoutError; Playwright is not imported here
        if type(exc).__name__ != "TimeoutError":
            raise
        return None
    return accepted is not None and bool(await page.locator(accepted).first.is_visible())
