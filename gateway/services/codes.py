"""Handing one-time codes to agents.

A code received by email or SMS is handed out once: the newest eligible one
is deleted, with every older one of the credential, in the transaction that
hands it out.  A request with ``wait`` sleeps on the credential's bell (see
``waiters``) and is woken the moment a code is committed; it never polls.

A credential with an authenticator answers at once with a code computed from
its vault-stored secret.  A TOTP code that would expire within
``min_validity`` seconds is not handed out: the request waits (within
``wait``) for the next time step instead.  An HOTP counter moves on by one in
a committed transaction before its code is returned, so a crash may skip a
value but never repeats one.

A code a person gave through an interaction (source ``user``) has its
interaction's id; handing it out here settles the interaction in the same
transaction (see ``store.interactions``), so it is never handed out twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, cast

from .. import ids, otp
from ..errors import Conflict, Invalid, NotFound
from ..store import codes as code_rows
from ..store import credentials as credential_rows
from ..store import interactions as interaction_rows
from ..store.db import Database
from ..vault import Vault
from .audit import SYSTEM, Actor, AuditTrail
from .presence import Parked, Waits
from .waiters import Bells

AUTHENTICATOR_SOURCES = ("totp", "hotp")
CODE, LINK = code_rows.CODE, code_rows.LINK
RECEIVED_SOURCES = ("email", "sms", "user")


@dataclass(frozen=True, slots=True)
class Code:
    """A code on its way to an agent.  Its repr hides the code."""

    code: str
    source: str
    expires_at: float | None = None
    received_at: float | None = None
    sender: str | None = None
    #: TOTP: the time step the code belongs to.
    step: int | None = None

    def __repr__(self) -> str:
        return f"Code(source={self.source!r}, code=<{len(self.code)} characters>)"


@dataclass(frozen=True, slots=True)
class Link:
    """A sign-in or confirmation link on its way to an agent.  Its repr hides the URL."""

    url: str
    kind: str | None
    source: str
    received_at: float
    sender: str | None = None

    def __repr__(self) -> str:
        return f"Link(kind={self.kind!r}, source={self.source!r}, url=<hidden>)"


class CodeService:
    def __init__(
        self,
        db: Database,
        vault: Vault,
        audit: AuditTrail | None = None,
        bells: Bells | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._vault = vault
        self._audit = audit or AuditTrail(db, enabled=False)
        self._bells = bells or Bells()
        self._clock = clock
        self.waits = Waits(db)

    def waiting(self) -> int:
        """How many requests wait on this replica for a code or link."""
        return self._bells.total()

    def code(
        self,
        tenant_id: str,
        cred_id: str,
        *,
        wait: float = 0,
        since: float | None = None,
        source: str | None = None,
        min_validity: int = 0,
        actor: Actor = SYSTEM,
        after_step: int | None = None,
    ) -> Coroutine[Any, Any, Code | None]:
        """The code for an agent now, or None when none came within *wait* seconds.

        Each code handed out is recorded in the audit trail (``code.read`` in
        the transaction that takes it; ``authenticator.read`` committed
        before it is returned).  *after_step* (a login's refused TOTP step)
        makes a TOTP request wait for a later step, within *wait*.

        Not a coroutine itself but the one that does the work: a long poll,
        one of thousands parked at once, waits in one frame less.
        """
        work = self._look(tenant_id, cred_id, wait, since, source, actor, CODE,
                          min_validity, after_step)  # fmt: skip
        return cast("Coroutine[Any, Any, Code | None]", work)

    def link(
        self,
        tenant_id: str,
        cred_id: str,
        *,
        wait: float = 0,
        since: float | None = None,
        actor: Actor = SYSTEM,
    ) -> Coroutine[Any, Any, Link | None]:
        """The newest link received (at or after *since*) not handed out yet, once.

        Like a received code: deleted, with every older link of the
        credential, in the transaction that hands it out (``link.read``).
        """
        work = self._look(tenant_id, cred_id, wait, since, None, actor, LINK)
        return cast("Coroutine[Any, Any, Link | None]", work)

    async def _authenticator_row(self, tenant_id: str, cred_id: str) -> Any:
        """The credential's authenticator columns; NotFound if there is no such credential.

        Its own frame: the connection (and its SQLAlchemy objects) is gone
        when it returns, not kept alive by the caller's frame while it waits.
        """
        async with self._db.read() as conn:
            row = await credential_rows.get_authenticator(conn, tenant_id, cred_id)
        if row is None:
            raise NotFound("no such credential")
        return row

    async def _look(
        self,
        tenant_id: str,
        cred_id: str,
        wait: float,
        since: float | None,
        source: str | None,
        actor: Actor,
        kind: str,
        min_validity: int = 0,
        after_step: int | None = None,
    ) -> Code | Link | None:
        """A code (*kind* CODE: the authenticator's, or one received) or a link, within *wait*."""
        row = await self._authenticator_row(tenant_id, cred_id)
        if kind == CODE:
            if source in AUTHENTICATOR_SOURCES and row.kind != source:
                raise Invalid(f"this credential has no {source} authenticator")
            if row.kind is not None and (source is None or source in AUTHENTICATOR_SOURCES):
                if row.kind == "totp":
                    return await self._totp(
                        tenant_id, cred_id, row, wait, min_validity, after_step, actor
                    )
                return await self._hotp(tenant_id, cred_id, actor)
        # A long poll may park here for minutes: its frame keeps nothing of the lookup.
        del row
        deadline = time.monotonic() + wait
        parked: Parked | None = None
        found: Code | Link | None = None
        try:
            with self._bells.waiting(cred_id):
                while True:
                    ticket = self._bells.ticket(cred_id)  # before looking: no lost wake-ups
                    found = await self._take(tenant_id, cred_id, since, source, actor, kind)
                    if found is not None:
                        return found
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._bells.closing:
                        return None
                    if parked is None:
                        # Recorded for every replica: a code arriving now is awaited.
                        parked = await self.waits.start(cred_id, self._clock() + remaining)
                    nap = ticket.nap(remaining)  # awaited here, with no frame around it
                    try:
                        await nap
                    finally:
                        ticket.forget(nap)
        finally:
            if parked is not None:
                if found is None:
                    await self.waits.end(parked)
                else:  # the agent has its answer at once, not after a commit
                    self.waits.end_soon(parked)

    async def _take(
        self,
        tenant_id: str,
        cred_id: str,
        since: float | None,
        source: str | None,
        actor: Actor,
        kind: str,
    ) -> Code | Link | None:
        now = self._clock()
        if self._db.is_sqlite:
            # A cheap look first: on SQLite the write below takes the one write lock.
            # (On PostgreSQL the write is as cheap when empty, and one round trip less.)
            async with self._db.read() as conn:
                if not await code_rows.has_code(
                    conn, tenant_id, cred_id, now=now, since=since, source=source, kind=kind
                ):
                    return None
        answer_prefix = f"{ids.INTERACTION}_"
        async with self._db.write() as conn:
            if self._db.is_sqlite:
                row = await code_rows.take_code(
                    conn, tenant_id, cred_id, now=now, since=since, source=source, kind=kind,
                    lock=False,
                )  # fmt: skip
            else:  # one statement: the code, the older ones, the data key, the audit head
                row = await code_rows.take_code_in_one(
                    conn, tenant_id, cred_id, now=now, since=since, source=source, kind=kind,
                    answer_prefix=answer_prefix,
                )  # fmt: skip
            if row is None:
                return None
            answered = row.source == "user" and row.id.startswith(answer_prefix)
            # A person's answer to an interaction (the row has the interaction's id):
            # settle the interaction in this transaction, so it is never handed out twice.
            if answered and not await interaction_rows.settle_taken(conn, tenant_id, row.id):
                return None
            head: tuple[int, str] | None = None
            if self._db.is_sqlite:
                wrapped = await credential_rows.get_sealed(conn, tenant_id, cred_id)
                assert wrapped is not None  # the code's row cascades with its credential
                data_key = wrapped[0]
            else:
                data_key = row.data_key
                if row.head_seq is not None:
                    head = (int(row.head_seq), str(row.head_hash))
            await self._audit.append(
                conn, tenant_id, actor, "code.read" if kind == CODE else "link.read",
                credential_id=cred_id, object_id=row.id, head=head,
            )  # fmt: skip
        if answered:
            self._bells.ring(row.id)  # its own long poll now answers 410
        field = f"code:{row.id}" if kind == CODE else f"link:{row.id}"
        value = self._vault.open_field_under(
            data_key, row.code, tenant_id=tenant_id, credential_id=cred_id, field=field
        ).decode()
        if kind == LINK:
            return Link(value, row.link_kind, row.source, row.received_at, row.sender)
        return Code(value, row.source, received_at=row.received_at, sender=row.sender)

    async def sweep(self) -> int:
        """Destroy received codes whose time is up; returns how many."""
        now = self._clock()
        return await self._db.sweep(
            lambda conn: code_rows.any_expired(conn, now),
            lambda conn: code_rows.delete_expired(conn, now),
        )

    def _authenticator(self, tenant_id: str, cred_id: str, row: Any) -> otp.Authenticator:
        secret = self._vault.open_field_under(
            row.data_key,
            row.secret,
            tenant_id=tenant_id,
            credential_id=cred_id,
            field="authenticator",
        )
        return otp.Authenticator(
            kind=row.kind,
            secret=secret,
            digits=row.digits,
            period=row.period,
            algorithm=row.algorithm,
            # Codes use the counter taken, not this one (HOTP_EXHAUSTED once used up).
            counter=max(0, row.counter),
            issuer=None,
            label=None,
        )

    async def _totp(
        self,
        tenant_id: str,
        cred_id: str,
        row: Any,
        wait: float,
        min_validity: int,
        after_step: int | None,
        actor: Actor,
    ) -> Code | None:
        """The TOTP code, once it is ready within *wait*; recorded (``authenticator.read``)."""
        auth = self._authenticator(tenant_id, cred_id, row)
        if min_validity >= auth.period:
            raise Invalid(
                f"min_validity must be shorter than the authenticator's period ({auth.period} s)"
            )
        now = self._clock()
        code, valid_until = otp.totp_window(auth, now)
        # The first moment a code may be handed out: past a refused step, and
        # (with min_validity) early enough in its step.
        ready = now
        if after_step is not None and valid_until <= (after_step + 1) * auth.period:
            ready = (after_step + 1) * auth.period
        elif valid_until - now < min_validity:
            ready = valid_until
        if ready > now:
            pause = ready - now
            if pause > wait:
                return None
            await asyncio.sleep(pause)
            code, valid_until = otp.totp_window(auth, max(self._clock(), ready))
        step = round(valid_until / auth.period) - 1
        await self._audit.record(tenant_id, actor, "authenticator.read", credential_id=cred_id)
        return Code(code, "totp", expires_at=valid_until, step=step)

    async def _hotp(self, tenant_id: str, cred_id: str, actor: Actor) -> Code:
        async with self._db.write() as conn:
            counter = await credential_rows.take_hotp_counter(conn, tenant_id, cred_id)
            row = await credential_rows.get_authenticator(conn, tenant_id, cred_id)
            if counter is None and row is not None and row.kind == "hotp":
                raise Conflict(
                    "this HOTP authenticator's counter has reached 2**63 - 1; enrol it again",
                    code="counter_exhausted",
                )
            if counter is None or row is None or row.kind != "hotp":
                # The authenticator was replaced or removed between our two reads.
                raise NotFound("this credential's authenticator changed; ask again")
            await self._audit.append(
                conn, tenant_id, actor, "authenticator.read", credential_id=cred_id
            )
        auth = self._authenticator(tenant_id, cred_id, row)
        return Code(otp.hotp_code(auth, counter), "hotp")
