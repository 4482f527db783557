"""What an agent waits for after marking the moment it asked: ``PendingCode`` and ``PendingLink``.

``AsyncClient.expect_code`` and ``expect_link`` mark the gateway's time just
before the agent makes a site send a code or a link, and hand out one of
these: only what the gateway received at or after the mark is taken, so a
code or link left over from an earlier login is never used.

Rejection: the site refused the code (or the link) handed out last, so the
next one must be newer.  For TOTP, the next time step (the same step's code
would be refused again); for HOTP, the next counter value, which the next
request gives anyway; for a received code or link (email, text, a person's
answer), one received after the refused one.  Not "after the rejection": a
site often sends a fresh code as it refuses one (or the agent pressed "send
a new code"), and that code can reach the gateway before the agent has read
the refusal; it must not be skipped.  The refused one itself, and every
older one, the gateway deleted when it handed it out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Generator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .errors import CodeTimeout, LinkTimeout
from .models import Code, Credential, Link, iso_time

if TYPE_CHECKING:
    from .aio import AsyncClient

log = logging.getLogger("otpgate.client")

#: ``await pending`` waits this long by default.
DEFAULT_WAIT = 120.0


class _Pending:
    """The mark shared by both: the credential and the gateway time from which to take."""

    def __init__(self, client: AsyncClient, credential: Credential, *, since: float) -> None:
        self._client = client
        self.credential = credential
        self._since = since
        self.handed_out = 0

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(credential={self.credential.id!r}, "
            f"since={iso_time(self._since)[:23]!r}, handed_out={self.handed_out})"
        )

    @property
    def since(self) -> datetime:
        """The gateway time from which a received code or link is accepted."""
        return datetime.fromtimestamp(self._since, UTC)

    def _after(self, received_at: datetime | None) -> None:
        """Take only what was received after *received_at* from now on (see the module doc)."""
        if received_at is not None:
            self._since = max(self._since, received_at.timestamp() + 0.001)


class PendingCode(_Pending):
    """A code an agent is waiting for, correlated with the moment it asked for it.

    ``await pending`` waits up to two minutes; ``await pending.code(wait=...)``
    as long as you say.  After a site refused the code, ``await
    pending.reject()`` and ask again: the next code is a newer one.  The
    object never holds the code itself.
    """

    def __init__(
        self, client: AsyncClient, credential: Credential, *, since: float, source: str | None
    ) -> None:
        super().__init__(client, credential, since=since)
        self._source = source
        #: The end of the TOTP step whose code was refused: only a later step is taken.
        self._after_step: float | None = None
        self._last: Code | None = None

    def __await__(self) -> Generator[Any, None, Code]:
        return self.code().__await__()

    async def code(self, *, wait: float = DEFAULT_WAIT, min_validity: int = 0) -> Code:
        """The code, waiting up to ``wait`` seconds; ``CodeTimeout`` when none came.

        ``min_validity`` (TOTP) is capped below the authenticator's period.
        """
        auth = self.credential.authenticator
        if auth is not None and auth.kind == "totp":
            min_validity = min(min_validity, auth.period - 1)
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            got = await self._client.code(
                self.credential,
                wait=remaining,
                since=self._since,
                min_validity=min_validity,
                source=self._source,
            )
            if got is None:
                raise CodeTimeout(f"no code for the credential within {wait:g} s")
            step_end = got.expires_at.timestamp() if got.expires_at is not None else None
            refused = self._after_step
            if got.source == "totp" and refused is not None and (step_end or 0) <= refused:
                # Still the refused step: wait for it to end, by the gateway's clock.
                pause = refused - self._client.clock.now()
                if pause > deadline - time.monotonic():
                    raise CodeTimeout(f"no new TOTP step within {wait:g} s")
                await asyncio.sleep(max(0.05, pause))
                continue
            self._last = got
            self.handed_out += 1
            return got

    async def reject(self) -> None:
        """The site refused the last code: the next ``code()`` waits for a newer one."""
        last = self._last
        if last is None:
            return
        if last.source == "totp" and last.expires_at is not None:
            self._after_step = last.expires_at.timestamp()
        elif last.source in ("email", "sms", "user"):
            self._after(last.received_at)
        log.debug("code rejected (source=%s); waiting for a newer one", last.source)
        self._last = None


class PendingLink(_Pending):
    """A sign-in or confirmation link an agent is waiting for (see ``expect_link``).

    ``await pending`` waits up to two minutes, ``await pending.link(wait=...)``
    as long as you say; ``reject()`` after the site refused the link makes
    the next one a link received after it.  Open the link with
    ``browser.open_link`` rather than handling its URL.
    """

    def __init__(self, client: AsyncClient, credential: Credential, *, since: float) -> None:
        super().__init__(client, credential, since=since)
        self._last: Link | None = None

    def __await__(self) -> Generator[Any, None, Link]:
        return self.link().__await__()

    async def link(self, *, wait: float = DEFAULT_WAIT) -> Link:
        """The link, waiting up to ``wait`` seconds; ``LinkTimeout`` when none came."""
        got = await self._client.link(self.credential, wait=wait, since=self._since)
        if got is None:
            raise LinkTimeout(f"no link for the credential within {wait:g} s")
        self._last = got
        self.handed_out += 1
        return got

    async def reject(self) -> None:
        """The site refused the last link: the next ``link()`` waits for a newer one."""
        if self._last is not None:
            self._after(self._last.received_at)
            log.debug("link rejected; waiting for a newer one")
            self._last = None
