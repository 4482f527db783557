"""``Login``: one sign-in to a credential's account, as the gateway's login attempt.

    async with gate.login(cred) as login:      # 409 LoginInProgress while another is open
        ...                                    # make the site send its code or link
        code = await login.code(wait=60)       # only what arrived after the login opened
        ...                                    # refused? await login.reject(), ask again
    # a clean exit finished it as "succeeded", an exception as "failed"

While a login is open, the credential's codes and links go to it alone: a
second agent signing in to the same account gets ``LoginInProgress``, or
queues (``wait=``) until the first finishes, and never takes the first
one's code.  A login hands out only what the gateway received after it
opened; ``reject`` makes the next one newer still (TOTP: a later step).
Which of its requests are repeated after a broken connection, and why
opening one is not, is in ``transport``'s doc.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from types import TracebackType
from typing import Any, Literal

from .errors import CodeTimeout, Conflict, LinkTimeout
from .models import Code, Link, code_from, link_from, parse_time
from .pending import DEFAULT_WAIT
from .transport import Transport

log = logging.getLogger("otpgate.client")

Outcome = Literal["succeeded", "failed"]


class Login:
    """An open login (``AsyncClient.login`` or ``open_login``).  It never holds a code.

    ``status`` is ``open``, ``succeeded`` or ``failed`` as far as this object
    knows (``refresh()`` asks the gateway).  After ``expires_at`` the gateway
    finishes it as ``failed``; its reads then raise ``Expired``
    (``login_finished``).
    """

    def __init__(self, http: Transport, body: dict[str, Any]) -> None:
        self._http = http
        self.id: str = body["id"]
        self.credential_id: str = body["credential_id"]
        self._update(body)
        #: Something was handed out since the login opened or since the last reject.
        self._handed = False
        self.handed_out = 0

    def _update(self, body: dict[str, Any]) -> None:
        self.status: str = body["status"]
        self.started_at: datetime | None = parse_time(body.get("started_at"))
        self.expires_at: datetime | None = parse_time(body.get("expires_at"))
        self.finished_at: datetime | None = parse_time(body.get("finished_at"))

    def __repr__(self) -> str:
        return (
            f"Login(id={self.id!r}, credential_id={self.credential_id!r}, "
            f"status={self.status!r}, handed_out={self.handed_out})"
        )

    @property
    def finished(self) -> bool:
        return self.status != "open"

    @property
    def _path(self) -> dict[str, str]:
        return {"id": self.id}

    async def code(self, *, wait: float = DEFAULT_WAIT, min_validity: float = 0) -> Code:
        """A code received (or computed) for this login, waiting up to ``wait`` seconds.

        ``CodeTimeout`` when none came; ``Expired`` once the login finished
        or ran out of time (the gateway never waits past ``expires_at``).
        A TOTP code valid for less than ``min_validity`` more seconds (by the
        gateway's clock) is passed over, once, for the next step's code.
        """
        deadline = time.monotonic() + max(0.0, wait)
        passed_over = False
        while True:
            left = max(0.0, deadline - time.monotonic())
            answer = await self._http.poll("/v1/logins/{id}/code", path=self._path, wait=left)
            if answer.status != 200:
                raise CodeTimeout(f"no code for the login within {wait:g} s")
            self._handed_one()
            code = code_from(answer.body)
            if code.source != "totp" or code.expires_at is None or passed_over:
                break
            clock = self._http.clock  # now() is never later than the gateway's time
            at_most = code.expires_at.timestamp() - clock.now()
            if at_most - (clock.uncertainty or 1.0) >= min_validity:
                break
            if at_most > deadline - time.monotonic():
                raise CodeTimeout(f"no TOTP code valid {min_validity:g} s more within {wait:g} s")
            await asyncio.sleep(max(0.0, at_most) + 0.05)  # the step is over on the gateway too
            passed_over = True
        log.debug("code handed out to the login (source=%s)", code.source)
        return code

    async def link(self, *, wait: float = DEFAULT_WAIT) -> Link:
        """A sign-in or confirmation link received for this login; ``LinkTimeout`` when none."""
        answer = await self._http.poll("/v1/logins/{id}/link", path=self._path, wait=wait)
        if answer.status != 200:
            raise LinkTimeout(f"no link for the login within {wait:g} s")
        self._handed_one()
        log.debug("link handed out to the login")
        return link_from(answer.body)

    def _handed_one(self) -> None:
        self._handed = True
        self.handed_out += 1

    async def reject(self) -> None:
        """The site refused the code or link handed out last: the next one is newer.

        ``Conflict`` (``nothing_handed_out``) when nothing was handed out
        since the login opened or since the last reject.
        """
        try:
            await self._http.request(
                "POST", "/v1/logins/{id}/reject", path=self._path, repeatable=True
            )
        except Conflict as exc:
            # A repeat of a reject the gateway did record finds nothing left to reject.
            if exc.code != "nothing_handed_out" or not self._handed:
                raise
        self._handed = False
        log.debug("the login's last code or link was refused; waiting for a newer one")

    async def finish(self, outcome: Outcome) -> None:
        """End the login as ``succeeded`` or ``failed``: the account is free for the next one.

        ``Conflict`` (``login_finished``) when it had already finished
        otherwise (run out of time, finished by another holder).
        """
        try:
            answer = await self._http.request(
                "POST",
                "/v1/logins/{id}/finish",
                path=self._path,
                body={"outcome": outcome},
                repeatable=True,
            )
        except Conflict as exc:
            if exc.code != "login_finished":
                raise
            await self.refresh()
            if self.status != outcome:  # not a repeat of this very finish
                raise
            return
        self._update(answer.body)
        log.debug("login finished (%s)", outcome)

    async def refresh(self) -> Login:
        """Ask the gateway how the login stands (``status``, ``finished_at``)."""
        answer = await self._http.request(
            "GET", "/v1/logins/{id}", path=self._path, repeatable=True
        )
        self._update(answer.body)
        return self


class LoginBlock:
    """``async with gate.login(cred) as login:``: opens on entry, finishes on exit.

    A clean exit finishes the login as ``succeeded``, an exception as
    ``failed`` (the exception then goes on); a login already finished in the
    block is left as it is.  A clean exit after the login ran out of time
    cannot make it ``succeeded``: that is logged, not raised, since the block
    did its work.
    """

    def __init__(self, opener: Callable[[], Awaitable[Login]]) -> None:
        self._opener = opener
        self.login: Login | None = None

    async def __aenter__(self) -> Login:
        self.login = await self._opener()
        return self.login

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        login = self.login
        if login is None or login.finished:
            return
        if exc_type is None:
            try:
                await login.finish("succeeded")
            except Conflict as refused:
                log.warning("the login could not be finished as succeeded: %s", refused.message)
            return
        try:
            # Shielded: a second cancellation must not leave the account locked until expiry.
            await asyncio.shield(login.finish("failed"))
        except Exception as failed:
            log.warning(
                "the login could not be finished as failed (%s); it ends at its expiry",
                type(failed).__name__,
            )
