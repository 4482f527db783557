"""Type a code (or a password) from the gateway into a Playwright page, or open a sign-in link.

The point is that the code or the link goes from the gateway into the page
without passing through the agent's language model, which could leak or
mistype it: the helper fetches it, fills the field and presses the button
(or navigates the agent's own page to the link, so the session's cookies
apply), and tells the caller only whether the site took it.

    async with AsyncClient(url, key) as gate:
        await page.fill("#username", cred.username)
        await fill_password(page, "#password", gate, cred)
        result = await fill_code(
            page, "#code", gate, cred,
            trigger=lambda: page.click("#sign-in"),   # makes the site send the code
            submit="#verify", accepted="#welcome", rejected=".error",
        )
        print(result)   # FillResult(ok=True, outcome='accepted', source='email', ...)

Inside a login (``async with gate.login(cred) as login:``) pass ``login=``
(or the login itself to ``open_link``): the code or link then comes from
that login, so an agent signing in to the same account at the same time
cannot take it, and a refusal is reported to the gateway (``reject``).

    async with gate.login(cred) as login:
        result = await open_link(
            page, gate, login,
            trigger=lambda: page.click("#email-me-a-link"),
            accepted="#welcome",
        )
        print(result)   # LinkResult(ok=True, outcome='accepted', kind='sign_in', ...)
        if not result:
            await login.finish("failed")

``selector`` may match one field or a set of boxes, one character each
(sites that split a code into six inputs).  The field or boxes are checked
before any code is fetched, so a code is never taken for a page that cannot
receive it; a code that does not fit the boxes is not typed.

Whichever way the credential gets its code works the same: its
authenticator (TOTP/HOTP), its inbox, its phone number, or (``via="person"``)
a person, who is sent the interaction's ``submit_url`` through
``on_submit_url`` (printed when none is given).  Playwright is not a
dependency of the SDK: ``page`` is any Playwright ``Page`` (async API), and
nothing here imports Playwright.  ``accepted`` and ``rejected`` are CSS
selectors.  Playwright's tracing, if you turn it on, records what was typed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Literal

from .aio import AsyncClient, CredentialRef, OnSubmitUrl, PendingCode, PendingLink, hand_over
from .errors import CodeTimeout, Expired, LinkTimeout
from .logins import Login
from .models import Code, Link

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
    ``expired`` (the person's request expired unanswered), ``no_verdict``
    (neither selector showed within ``settle`` seconds), ``no_field`` (the
    field or boxes were not there, visible and editable within
    ``field_timeout`` seconds: no code was fetched), ``length_mismatch`` (the
    code did not fit the boxes or the field's ``maxlength``: nothing typed)
    or ``not_typed`` (the boxes did not hold the code after typing: the page
    took other input; nothing submitted).
    """

    ok: bool
    outcome: str
    source: str | None
    attempts: int
    seconds: float

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True, slots=True)
class LinkResult:
    """What opening a link did, without the link.

    ``outcome`` is ``accepted`` (the ``accepted`` selector showed),
    ``opened`` (no selectors given: the page loaded with a 2xx or 3xx
    status), ``rejected`` (the ``rejected`` selector showed, or with no
    selectors an error status), ``no_link`` (none came within ``wait``),
    ``unreachable`` (the navigation failed) or ``no_verdict`` (neither
    selector showed within ``settle`` seconds).  ``kind`` is the link's
    (``sign_in``, ``confirm``...), ``status`` the HTTP status of the page.
    """

    ok: bool
    outcome: str
    kind: str | None
    status: int | None
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
    on_submit_url: OnSubmitUrl | None = None,
    login: Login | None = None,
    field_timeout: float = 15.0,
) -> FillResult:
    """Get the credential's code, type it into ``selector``, and say whether it worked.

    ``selector`` is checked first, after ``trigger`` and before each code is
    fetched: it must match, within ``field_timeout`` seconds, inputs that
    are all visible and editable (else ``no_field``, and no code is taken).
    One match is a field: the code is filled in, unless it is longer than
    the field's ``maxlength``.  Several matches are boxes, one character
    each, in document order: a code whose length is not their number is not
    typed (``length_mismatch``).  Boxes are filled by a paste on the first
    (pages with a paste handler spread it), else typed key by key, each box
    focused in turn (boxes that move the focus on by themselves, or not),
    else filled one by one; the boxes must then hold the code, or nothing
    is submitted (``not_typed``).

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
    its ``submit_url`` to ``on_submit_url`` (or prints it).  With ``login``
    the codes come from that login (a person's answer too), and a refusal
    is reported to it (``login.reject()``) before the next try; the login is
    not finished here.
    """
    started = time.monotonic()
    source: str | None = None
    tries = 0

    def result(ok: bool, outcome: str) -> FillResult:
        return FillResult(ok, outcome, source, tries, round(time.monotonic() - started, 3))

    async with AsyncExitStack() as stack:
        if via == "auto" and pending is None and trigger is not None and login is None:
            pending = await stack.enter_async_context(client.expect_code(credential))
        if trigger is not None:
            await trigger()
        while tries < max(1, attempts):
            tries += 1
            if tries > 1 and resend is not None:
                await resend()
            target = await _target(page, selector, field_timeout)
            if target is None:
                log.info("the code's field is not there, visible and editable: no code taken")
                return result(False, "no_field")
            try:
                code = await _get_code(
                    client,
                    credential,
                    via,
                    pending,
                    login,
                    wait,
                    min_validity,
                    prompt,
                    on_submit_url,
                )
            except CodeTimeout:
                log.info("no code came within %g s", wait)
                return result(False, "no_code")
            except Expired:
                log.info("the person's request expired unanswered")
                return result(False, "expired")
            source = code.source
            if not target.fits(code.value):
                log.info("the code does not fit the %s; not typed", target)
                return result(False, "length_mismatch")
            try:
                verdict = await _type_and_check(
                    page, target, code, submit, accepted, rejected, settle
                )
            except _NotTyped:
                log.info("the %s did not hold the code after typing; not submitted", target)
                return result(False, "not_typed")
            finally:
                del code
            if verdict is None:
                watched = accepted is not None or rejected is not None
                return result(not watched, "no_verdict" if watched else "typed")
            if verdict:
                return result(True, "accepted")
            log.info("the site refused the code (try %d of %d)", tries, attempts)
            if login is not None:
                await login.reject()
            elif pending is not None:
                await pending.reject()
        return result(False, "rejected")


async def _get_code(
    client: AsyncClient,
    credential: CredentialRef,
    via: str,
    pending: PendingCode | None,
    login: Login | None,
    wait: float,
    min_validity: int,
    prompt: str | None,
    on_submit_url: OnSubmitUrl | None,
) -> Code:
    if via == "person":
        interaction = await client.create_interaction(credential, prompt=prompt)
        assert interaction.submit_url is not None
        await hand_over(interaction.submit_url, on_submit_url, "give the code")
        if login is not None:  # the answer reaches the login as a received code
            return await login.code(wait=wait)
        got = await client.interaction_code(interaction, wait=wait)
        if got is None:
            raise CodeTimeout(f"no answer within {wait:g} s")
        return got
    if login is not None:
        return await login.code(wait=wait, min_validity=min_validity)
    if pending is not None:
        return await pending.code(wait=wait, min_validity=min_validity)
    got = await client.code(credential, wait=wait, min_validity=min_validity)
    if got is None:
        raise CodeTimeout(f"no code within {wait:g} s")
    return got


async def open_link(
    page: Any,
    client: AsyncClient,
    credential_or_login: CredentialRef | Login,
    *,
    trigger: Callable[[], Awaitable[object]] | None = None,
    wait: float = 120.0,
    accepted: str | None = None,
    rejected: str | None = None,
    settle: float = 15.0,
    navigation_timeout: float = 30.0,
) -> LinkResult:
    """Get the sign-in link, open it in ``page`` (the agent's own), and say whether it worked.

    ``trigger`` makes the site send the link (clicking "Email me a link"):
    with a credential it runs inside ``expect_link``, so a link from an
    earlier sign-in is never opened; with a ``Login`` the login already
    takes only what came after it opened.  The page goes to the link, so
    the cookies of the session that asked for it apply (sites often sign in
    only the browser that asked).  ``accepted``/``rejected`` are CSS
    selectors waited for up to ``settle`` seconds; a refusal is reported to
    the login or the expectation, so the next link taken is newer.  The
    link's URL never leaves this function: not in the result, not in a log,
    not in an exception (a failed navigation is the ``unreachable`` outcome,
    since the browser's error message names the URL).
    """
    started = time.monotonic()

    def result(ok: bool, outcome: str, link: Link | None = None, status: int | None = None
               ) -> LinkResult:  # fmt: skip
        kind = link.kind if link is not None else None
        return LinkResult(ok, outcome, kind, status, round(time.monotonic() - started, 3))

    async with AsyncExitStack() as stack:
        source: Login | PendingLink | None = None
        if isinstance(credential_or_login, Login):
            source = credential_or_login
        elif trigger is not None:
            source = await stack.enter_async_context(client.expect_link(credential_or_login))
        if trigger is not None:
            await trigger()
        try:
            link = await _get_link(client, credential_or_login, source, wait)
        except LinkTimeout:
            log.info("no link came within %g s", wait)
            return result(False, "no_link")
        status = await _navigate(page, link, navigation_timeout)
        if status is None:
            return result(False, "unreachable", link)
        if accepted is None and rejected is None:
            ok = status < 400
            if not ok and source is not None:
                await source.reject()
            return result(ok, "opened" if ok else "rejected", link, status)
        verdict = await _verdict(page, accepted, rejected, settle)
        if verdict is None:
            return result(False, "no_verdict", link, status)
        if not verdict:
            log.info("the site refused the link")
            if source is not None:
                await source.reject()
            return result(False, "rejected", link, status)
        return result(True, "accepted", link, status)


async def _get_link(
    client: AsyncClient,
    credential_or_login: CredentialRef | Login,
    source: Login | PendingLink | None,
    wait: float,
) -> Link:
    if source is not None:
        return await source.link(wait=wait)
    assert not isinstance(credential_or_login, Login)
    got = await client.link(credential_or_login, wait=wait)
    if got is None:
        raise LinkTimeout(f"no link within {wait:g} s")
    return got


async def _navigate(page: Any, link: Link, seconds: float) -> int | None:
    """Go to the link; its page's HTTP status, or None when the navigation failed."""
    try:
        response = await page.goto(link.url, timeout=seconds * 1000)
    except Exception as exc:  # Playwright's Error: its message holds the URL, so it stops here
        log.info("the link could not be opened (%s)", type(exc).__name__)
        return None
    return 200 if response is None else int(response.status)


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a code goes: one field (with its ``maxlength``, if any) or ``count`` boxes."""

    inputs: Any  # the Playwright Locator matching the field or every box
    count: int
    maxlength: int | None

    def fits(self, value: str) -> bool:
        if self.count > 1:
            return len(value) == self.count
        return self.maxlength is None or len(value) <= self.maxlength

    def __str__(self) -> str:
        return "field" if self.count == 1 else f"{self.count} boxes"


async def _target(page: Any, selector: str, seconds: float) -> _Target | None:
    """The field or boxes of ``selector``, once each is visible and editable; None if not."""
    inputs = page.locator(selector)
    try:
        await inputs.first.wait_for(state="visible", timeout=seconds * 1000)
        count = int(await inputs.count())
        for i in range(count):
            box = inputs.nth(i)
            if not (await box.is_visible() and await box.is_editable()):
                return None
    except Exception as exc:  # Playwright's TimeoutError, or an element that is not an input
        log.info("the code's field could not be checked (%s)", type(exc).__name__)
        return None
    maxlength = None
    if count == 1:
        declared = await inputs.get_attribute("maxlength")
        if declared is not None and declared.strip().isdigit() and int(declared) > 0:
            maxlength = int(declared)
    return _Target(inputs, count, maxlength) if count else None


#: Dispatches a paste of the code on the first box, as a person's Ctrl+V would.
_PASTE = """(box, text) => {
    box.focus();
    const data = new DataTransfer();
    data.setData("text/plain", text);
    box.dispatchEvent(new ClipboardEvent("paste",
        {clipboardData: data, bubbles: true, cancelable: true}));
}"""
_VALUES = "boxes => boxes.map(b => b.value)"


class _NotTyped(Exception):
    """The boxes did not hold the code after typing (the page took other input)."""


async def _fill_boxes(target: _Target, value: str) -> bool:
    """Put one character of *value* in each box; whether the boxes hold it afterwards."""
    boxes = target.inputs

    async def holds(expected: list[str]) -> bool:
        return bool(await boxes.evaluate_all(_VALUES) == expected)

    empty = [""] * target.count

    async def clear() -> None:
        if not await holds(empty):
            for i in reversed(range(target.count)):
                await boxes.nth(i).fill("")

    await clear()
    await boxes.first.evaluate(_PASTE, value)
    if await holds(list(value)):
        return True
    await clear()
    for i, char in enumerate(value):  # each box focused in turn: with or without auto-advance
        await boxes.nth(i).press_sequentially(char)
    if await holds(list(value)):
        return True
    await clear()
    for i, char in enumerate(value):
        await boxes.nth(i).fill(char)
    return await holds(list(value))


async def _type_and_check(
    page: Any,
    target: _Target,
    code: Code,
    submit: str | None,
    accepted: str | None,
    rejected: str | None,
    settle: float,
) -> bool | None:
    """Fill and submit; True/False for the site's verdict, None when there is none to wait for.

    Raises :class:`_NotTyped` when boxes did not take the code (then nothing is submitted).
    """
    if rejected is not None:
        # A refusal already showing (from the previous try) must not count for this one.
        await page.evaluate(
            f"sel => document.querySelectorAll(sel).forEach(e => e.setAttribute('{_SEEN}', ''))",
            rejected,
        )
    if target.count == 1:
        await target.inputs.fill(code.value)
    elif not await _fill_boxes(target, code.value):
        raise _NotTyped
    if submit is not None:
        await page.locator(submit).click()
    elif target.count == 1:
        await target.inputs.press("Enter")
    else:  # to the focused element: a page that submits by itself on the last box has moved on
        await page.keyboard.press("Enter")
    if accepted is None and rejected is None:
        return None
    return await _verdict(page, accepted, rejected, settle)


async def _verdict(
    page: Any, accepted: str | None, rejected: str | None, settle: float
) -> bool | None:
    """True when ``accepted`` shows, False when a fresh ``rejected`` does, None after ``settle``."""
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
