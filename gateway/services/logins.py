"""Login attempts: an agent signing in to a credential's account, as one object.

Opening a login claims the credential: at most one login per credential is
open, a rule the database enforces on every replica (``store.logins``).  A
second agent gets 409 ``login_in_progress``, or waits (``wait``) until the
first login ends and then opens its own.  A login hands out only what
arrived at or after it started, so two agents signing in one after the other
never take each other's codes; ``reject`` says the site refused what was
handed out last, and the next fetch gives only something newer (TOTP: a later
time step, waiting for it when needed).  A login that runs out of time is
finished as ``failed`` by whoever sees it first: the sweeper, or a request.

Every login opened and finished is in the audit trail, and
``otpgate_logins_total{outcome}`` counts the finished ones.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from .. import ids
from ..errors import Conflict, Expired, NotFound
from ..metrics import Metrics
from ..store import credentials as credential_rows
from ..store import logins as login_rows
from ..store.db import Conn, Database
from ..store.signals import notify
from .audit import SYSTEM, Actor, AuditTrail
from .codes import Code, CodeService, Link
from .presence import Parked
from .waiters import Bells, sleep_on

log = logging.getLogger("otpgate.logins")

DEFAULT_TTL = 300
OUTCOMES = ("succeeded", "failed")


@dataclass(frozen=True, slots=True)
class LoginInfo:
    id: str
    credential_id: str
    status: str
    started_at: float
    expires_at: float
    finished_at: float | None


def _info(row: Any) -> LoginInfo:
    return LoginInfo(
        row.id, row.credential_id, row.status, row.started_at, row.expires_at, row.finished_at
    )


def _bell(credential_id: str) -> str:
    """The bell rung when a credential's login ends (agents queue on it)."""
    return f"login:{credential_id}"


class LoginService:
    def __init__(
        self,
        db: Database,
        codes: CodeService,
        audit: AuditTrail,
        bells: Bells,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._codes = codes
        self._audit = audit
        self._bells = bells
        self._metrics = metrics
        self._clock = clock

    # -- opening and reading --------------------------------------------------------

    async def open(
        self,
        tenant_id: str,
        cred_id: str,
        *,
        ttl: float = DEFAULT_TTL,
        wait: float = 0,
        actor: Actor = SYSTEM,
        lookback: float = 0,
    ) -> LoginInfo:
        """Open a login on the credential, waiting up to *wait* s for an open one to end.

        *lookback*: it also takes what arrived that many seconds before it opened
        (for a caller that asks only after the site sent its code: Skyvern).
        """
        deadline = time.monotonic() + wait
        parked: Parked | None = None
        try:
            with self._bells.waiting(_bell(cred_id)):
                while True:
                    ticket = self._bells.ticket(_bell(cred_id))  # before trying
                    opened = await self._try_open(tenant_id, cred_id, ttl, actor, lookback)
                    if opened is not None:
                        return opened
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._bells.closing:
                        raise Conflict(
                            "another login to this account is in progress; "
                            "finish it, or ask with 'wait' to queue behind it",
                            code="login_in_progress",
                        )
                    if parked is None:  # a code arriving now is awaited
                        parked = await self._codes.waits.start(cred_id, self._clock() + remaining)
                    async with self._db.read() as conn:
                        blocker = await login_rows.open_of(conn, cred_id)
                    # Wake when it ends, or when its time is up (to end it ourselves).
                    pause = remaining
                    if blocker is not None:
                        pause = min(pause, max(0.0, blocker.expires_at - self._clock()) + 0.01)
                    await sleep_on(ticket, pause)
        finally:
            if parked is not None:
                await self._codes.waits.end(parked)

    async def _try_open(
        self, tenant_id: str, cred_id: str, ttl: float, actor: Actor, lookback: float = 0
    ) -> LoginInfo | None:
        now = self._clock()
        login_id = ids.new_id(ids.LOGIN)
        try:
            async with self._db.write() as conn:
                if await credential_rows.get_public(conn, tenant_id, cred_id) is None:
                    raise NotFound("no such credential")
                ended = await login_rows.expire_due(conn, now, credential_id=cred_id)
                await self._record_ended(conn, ended)
                await login_rows.insert_login(
                    conn,
                    id=login_id,
                    tenant_id=tenant_id,
                    credential_id=cred_id,
                    status=login_rows.OPEN,
                    started_at=now,
                    expires_at=now + ttl,
                    not_before=now - lookback,
                )
                await self._audit.append(
                    conn,
                    tenant_id,
                    actor,
                    "login.opened",
                    credential_id=cred_id,
                    object_id=login_id,
                )
        except IntegrityError:
            return None  # another login is open: the unique index said so
        self._announce_ended(ended)
        log.info("login opened", extra={"credential": cred_id, "login": login_id})
        return LoginInfo(login_id, cred_id, login_rows.OPEN, now, now + ttl, None)

    async def get(self, tenant_id: str, login_id: str) -> LoginInfo:
        return _info(await self._current(tenant_id, login_id))

    async def credential_of(self, tenant_id: str, login_id: str) -> str | None:
        async with self._db.read() as conn:
            row = await login_rows.get(conn, tenant_id, login_id)
        return None if row is None else str(row.credential_id)

    async def _current(self, tenant_id: str, login_id: str) -> Any:
        """The login as it stands, finished as ``failed`` first if its time is up."""
        async with self._db.read() as conn:
            row = await login_rows.get(conn, tenant_id, login_id)
        if row is None:
            raise NotFound("no such login")
        if row.status == login_rows.OPEN and row.expires_at <= self._clock():
            await self._expire(row.credential_id)
            async with self._db.read() as conn:
                row = await login_rows.get(conn, tenant_id, login_id)
            if row is None:
                raise NotFound("no such login")
        return row

    async def _open_row(self, tenant_id: str, login_id: str) -> Any:
        row = await self._current(tenant_id, login_id)
        if row.status != login_rows.OPEN:
            raise Expired(f"this login has finished ({row.status})", code="login_finished")
        return row

    # -- handing out ----------------------------------------------------------------

    async def code(
        self, tenant_id: str, login_id: str, *, wait: float = 0, actor: Actor = SYSTEM
    ) -> Code | None:
        """A code that arrived at or after the login started (and after any reject)."""
        row = await self._open_row(tenant_id, login_id)
        wait = max(0.0, min(wait, row.expires_at - self._clock()))
        code = await self._codes.code(
            tenant_id,
            row.credential_id,
            wait=wait,
            since=row.not_before,
            actor=actor,
            after_step=row.refused_step,
        )
        if code is not None:
            kind = code.source if code.source in ("totp", "hotp") else "code"
            await self._handed(login_id, kind, code.received_at, code.step)
        return code

    async def link(
        self, tenant_id: str, login_id: str, *, wait: float = 0, actor: Actor = SYSTEM
    ) -> Link | None:
        """A link that arrived at or after the login started (and after any reject)."""
        row = await self._open_row(tenant_id, login_id)
        wait = max(0.0, min(wait, row.expires_at - self._clock()))
        link = await self._codes.link(
            tenant_id, row.credential_id, wait=wait, since=row.not_before, actor=actor
        )
        if link is not None:
            await self._handed(login_id, "link", link.received_at, None)
        return link

    async def _handed(
        self, login_id: str, kind: str, received_at: float | None, step: int | None
    ) -> None:
        async with self._db.write() as conn:
            await login_rows.handed(conn, login_id, kind=kind, received_at=received_at, step=step)

    async def reject(self, tenant_id: str, login_id: str) -> None:
        """The site refused what this login handed out last: hand out only something newer."""
        row = await self._open_row(tenant_id, login_id)
        if row.last_kind is None:
            raise Conflict(
                "nothing was handed out in this login since it opened or since the last reject",
                code="nothing_handed_out",
            )
        values: dict[str, Any] = {}
        if row.last_kind in ("code", "link") and row.last_received_at is not None:
            values["not_before"] = max(
                row.not_before, math.nextafter(row.last_received_at, math.inf)
            )
        elif row.last_kind == "totp" and row.last_step is not None:
            values["refused_step"] = max(row.refused_step or 0, row.last_step)
        async with self._db.write() as conn:
            if not await login_rows.refuse(conn, login_id, **values):
                raise Conflict("this login changed meanwhile; ask again")

    # -- finishing ------------------------------------------------------------------

    async def finish(
        self, tenant_id: str, login_id: str, outcome: str, *, actor: Actor = SYSTEM
    ) -> LoginInfo:
        """End the login as *outcome*; the credential is free for the next one."""
        row = await self._current(tenant_id, login_id)
        now = self._clock()
        async with self._db.write() as conn:
            if not await login_rows.finish(conn, login_id, status=outcome, now=now):
                raise Conflict(
                    f"this login has already finished ({row.status})", code="login_finished"
                )
            await self._audit.append(
                conn,
                tenant_id,
                actor,
                "login.finished",
                credential_id=row.credential_id,
                object_id=login_id,
                outcome=outcome,
            )
            await notify(conn, [_bell(row.credential_id)])
        self._metrics.logins.inc(outcome)
        self._bells.ring(_bell(row.credential_id))
        log.info(
            "login finished",
            extra={"credential": row.credential_id, "login": login_id, "outcome": outcome},
        )
        return LoginInfo(login_id, row.credential_id, outcome, row.started_at, row.expires_at, now)

    async def _expire(self, credential_id: str) -> None:
        async with self._db.write() as conn:
            ended = await login_rows.expire_due(conn, self._clock(), credential_id=credential_id)
            await self._record_ended(conn, ended)
        self._announce_ended(ended)

    async def sweep(self) -> int:
        """Finish as ``failed`` every login whose time is up; how many."""
        now = self._clock()
        ended: list[Any] = []

        async def expire(conn: Conn) -> int:
            ended.extend(await login_rows.expire_due(conn, now))
            await self._record_ended(conn, ended)
            return len(ended)

        await self._db.sweep(lambda conn: login_rows.any_due(conn, now), expire)
        self._announce_ended(ended)
        await self._codes.waits.sweep(self._clock())
        return len(ended)

    async def _record_ended(self, conn: Conn, ended: Sequence[Any]) -> None:
        for row in ended:
            await self._audit.append(
                conn,
                row.tenant_id,
                SYSTEM,
                "login.finished",
                credential_id=row.credential_id,
                object_id=row.id,
                outcome="failed",
            )
        if ended:
            await notify(conn, [_bell(row.credential_id) for row in ended])

    def _announce_ended(self, ended: Sequence[Any]) -> None:
        for row in ended:
            self._metrics.logins.inc("failed")
            self._bells.ring(_bell(row.credential_id))
            log.info(
                "login expired: finished as failed",
                extra={"credential": row.credential_id, "login": row.id},
            )
