"""Browser Use actions that type a two-factor code or open a sign-in link without the model.

    from browser_use import Agent, Tools
    from gateway.agents.browser_use import register
    from gateway.client import AsyncClient

    tools = Tools()
    register(tools, AsyncClient("http://127.0.0.1:8080", agent_key))
    agent = Agent(task="Sign in to Acme (otpgate credential cred_...)", llm=llm, tools=tools)

``register`` adds three actions to a Browser Use ``Tools`` (its ``Controller``)
registry, through its own ``tools.action`` decorator:

* ``otpgate_fill_code(credential_id, index, submit=True)``: the account's
  code (authenticator, mail, text) is typed into the input element at
  ``index`` and Enter pressed; calling it again means the site refused the
  last one, and the next code is newer (a later TOTP step, a later mail);
* ``otpgate_open_link(credential_id)``: the sign-in link the account was
  mailed opens in the current tab, so the session that asked for it signs in;
* ``otpgate_ask_person(credential_id, kind, index=None)``: a person gives the
  code (typed at ``index``) or approves a push prompt; the ``submit_url`` goes
  to ``on_submit_url`` (the operator's channel to that person), not to the model.

Each returns an ``ActionResult`` that says only whether it worked: the code
goes from the gateway into the page as Browser Use's sensitive input (its
logs show ``<sensitive>``), and the link's URL is neither in the result nor
in an error.  What stays visible is what the browser shows afterwards: the
page the link leads to (sites redirect away from the token) and a filled
field's masked or unmasked value in the page's DOM, as with a password.

Only what the gateway received in the last ``max_age`` seconds (by its
clock) is taken, so a code from an earlier sign-in is never typed.  Browser
Use is not a dependency of otpgate: ``pip install 'otpgate[browser-use]'``.
"""

# No ``from __future__ import annotations``: Browser Use reads the actions' annotations at
# run time to build their parameter models.
from typing import Any, Literal

from browser_use import ActionResult, BrowserSession
from browser_use.browser.events import NavigateToUrlEvent, SendKeysEvent, TypeTextEvent

from gateway.client import (
    AsyncClient,
    CodeTimeout,
    Expired,
    LinkTimeout,
    OtpgateClientError,
    PendingCode,
    PendingLink,
)
from gateway.client.aio import OnSubmitUrl, hand_over

#: How far back (seconds, the gateway's clock) a received code or link may have arrived.
MAX_AGE = 120.0
#: The name Browser Use's logs show instead of the typed value.
SENSITIVE_NAME = "otpgate_code"


def _failed(message: str) -> Any:
    return ActionResult(error=message)


def _done(message: str) -> Any:
    return ActionResult(extracted_content=message, long_term_memory=message)


async def _type(session: Any, index: int, value: str, submit: bool) -> str | None:
    """Type ``value`` as sensitive input at ``index`` (Enter after it); an error, or None."""
    node = await session.get_element_by_index(index)
    if node is None:
        return f"Element index {index} is not on the page; refresh the state and try again."
    typed = session.event_bus.dispatch(
        TypeTextEvent(
            node=node, text=value, clear=True, is_sensitive=True, sensitive_key_name=SENSITIVE_NAME
        )
    )
    await typed
    await typed.event_result(raise_if_any=True, raise_if_none=False)  # its metadata is not kept
    if submit:
        pressed = session.event_bus.dispatch(SendKeysEvent(keys="Enter"))
        await pressed
        await pressed.event_result(raise_if_any=True, raise_if_none=False)
    return None


class _Marks:
    """Per credential, the code and link expectations the actions share (see the module doc)."""

    def __init__(self, client: AsyncClient, max_age: float) -> None:
        self.client = client
        self.max_age = max_age
        self.codes: dict[str, PendingCode] = {}
        self.links: dict[str, PendingLink] = {}

    async def code(self, credential_id: str, wait: float) -> tuple[str, str]:
        pending = self.codes.get(credential_id)
        if pending is None:
            info = await self.client.credential(credential_id)  # also reads the gateway's clock
            since = self.client.clock.now() - self.max_age
            pending = self.codes[credential_id] = PendingCode(
                self.client, info, since=since, source=None
            )
        elif pending.handed_out:
            await pending.reject()  # asked again: the site refused the last one
        got = await pending.code(wait=wait, min_validity=3)
        return got.value, got.source

    async def link(self, credential_id: str, wait: float) -> tuple[str, str | None]:
        pending = self.links.get(credential_id)
        if pending is None:
            info = await self.client.credential(credential_id)
            since = self.client.clock.now() - self.max_age
            pending = self.links[credential_id] = PendingLink(self.client, info, since=since)
        elif pending.handed_out:
            await pending.reject()
        got = await pending.link(wait=wait)
        return got.url, got.kind


def register(
    tools: Any,
    client: AsyncClient,
    *,
    max_age: float = MAX_AGE,
    on_submit_url: OnSubmitUrl | None = None,
) -> None:
    """Add ``otpgate_fill_code``, ``otpgate_open_link`` and ``otpgate_ask_person`` to ``tools``.

    ``tools`` is a Browser Use ``Tools`` (or ``Controller``); ``client`` an
    ``AsyncClient`` with an agent key.  ``on_submit_url`` gets the link a
    person answers at (printed when None).
    """
    marks = _Marks(client, max_age)

    async def otpgate_fill_code(
        credential_id: str,
        index: int,
        browser_session: BrowserSession,
        submit: bool = True,
        wait: int = 60,
    ) -> Any:
        try:
            value, source = await marks.code(credential_id, wait)
        except CodeTimeout:
            return _failed(f"No two-factor code arrived within {wait} s.")
        except OtpgateClientError as exc:
            return _failed(f"otpgate: {exc}")
        failed = await _type(browser_session, index, value, submit)
        del value
        if failed:
            return _failed(failed)
        return _done(f"Filled the two-factor code (from {source}) into element {index}.")

    async def otpgate_open_link(
        credential_id: str, browser_session: BrowserSession, wait: int = 60
    ) -> Any:
        try:
            url, kind = await marks.link(credential_id, wait)
        except LinkTimeout:
            return _failed(f"No sign-in link arrived within {wait} s.")
        except OtpgateClientError as exc:
            return _failed(f"otpgate: {exc}")
        try:
            opened = browser_session.event_bus.dispatch(NavigateToUrlEvent(url=url))
            await opened
            await opened.event_result(raise_if_any=True, raise_if_none=False)
        except Exception as exc:  # the browser's message names the URL: say only what failed
            return _failed(f"The sign-in link could not be opened ({type(exc).__name__}).")
        finally:
            del url
        return _done(f"Opened the {kind or 'sign-in'} link; look at the page to see the outcome.")

    async def otpgate_ask_person(
        credential_id: str,
        browser_session: BrowserSession,
        kind: Literal["code", "approval"] = "code",
        index: int | None = None,
        prompt: str | None = None,
        match: str | None = None,
        wait: int = 300,
    ) -> Any:
        if kind == "code" and index is None:
            return _failed("kind='code' needs the index of the input element to type it into.")
        try:
            asked = await client.create_interaction(
                credential_id, prompt=prompt, kind=kind, match=match
            )
            assert asked.submit_url is not None
            what = "give a code" if kind == "code" else "approve or deny a sign-in"
            await hand_over(asked.submit_url, on_submit_url, what)
            if kind == "approval":
                decided = await client.interaction(asked, wait=wait)
                if decided.approved:
                    return _done("The person approved the sign-in.")
                return _failed(f"The sign-in was not approved (status {decided.status}).")
            got = await client.interaction_code(asked, wait=wait)
        except Expired:
            return _failed("The person's request expired unanswered.")
        except OtpgateClientError as exc:
            return _failed(f"otpgate: {exc}")
        if got is None:
            return _failed(f"The person did not answer within {wait} s.")
        assert index is not None
        failed = await _type(browser_session, index, got.value, True)
        if failed:
            return _failed(failed)
        return _done(f"Filled the code the person gave into element {index}.")

    # Browser Use's own decorator, called plainly: the actions are its, named as above.
    tools.action(
        "Type the account's two-factor code, fetched from otpgate, into the input element at "
        "index and press Enter (submit=false: do not). You never see the code. If the site "
        "refused it, call this again: the next code is a newer one."
    )(otpgate_fill_code)
    tools.action(
        "Open the sign-in (or confirmation) link that otpgate received for the account, in the "
        "current tab, so this browser signs in. You never see the link."
    )(otpgate_open_link)
    tools.action(
        "Ask a person through otpgate: kind='code' for the account's code (typed into the input "
        "element at index, then Enter), kind='approval' to approve the sign-in prompt (match: "
        "the number the page shows). Waits for the answer; you never see the code."
    )(otpgate_ask_person)
