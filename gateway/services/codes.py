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
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import ids, otp
from ..errors import Invalid, NotFound
from ..store import codes as code_rows
from ..store import credentials as credential_rows
from ..store import interactions as interaction_rows
from ..store.db import Database
from ..vault import Vault
from .audit import SYSTEM, Actor, AuditTrail
from .waiters import Bells

AUTHENTICATOR_SOURCES = ("totp", "hotp")
RECEIVED_SOURCES = ("email", "sms", "user")


@dataclass(frozen=True, slots=True)
class Code:
    """A code on its way to an agent.  Its repr hides the code."""

    code: str
    source: str
    expires_at: float | None = None
    received_at: float | None = None
    sender: str | None = None

    def __repr__(self) -> str:
        return f"Code(source={self.source!r}, code=<{len(self.code)} characters>)"


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

    async def code(
        self,
        tenant_id: str,
        cred_id: str,
        *,
        wait: float = 0,
        since: float | None = None,
        source: str | None = None,
        min_validity: int = 0,
        actor: Actor = SYSTEM,
    ) -> Code | None:
        """The code for an agent now, or None when none came within *wait* seconds.

        Each code handed out is recorded in the audit trail (``code.read`` in
        the transaction that takes it; ``authenticator.read`` committed
        before it is returned).
        """
        async with self._db.read() as conn:
            row = await credential_rows.get_authenticator(conn, tenant_id, cred_id)
        if row is None:
            raise NotFound("no such credential")
        use_authenticator = row.kind is not None and (
            source is None or source in AUTHENTICATOR_SOURCES
        )
        if source in AUTHENTICATOR_SOURCES and row.kind != source:
            raise Invalid(f"this credential has no {source} authenticator")
        if use_authenticator:
            if row.kind == "totp":
                code = await self._totp(tenant_id, cred_id, row, wait, min_validity)
                if code is not None:
                    await self._audit.record(
                        tenant_id, actor, "authenticator.read", credential_id=cred_id
                    )
                return code
            return await self._hotp(tenant_id, cred_id, actor)
        return await self._received(tenant_id, cred_id, wait, since, source, actor)

    async def _received(
        self,
        tenant_id: str,
        cred_id: str,
        wait: float,
        since: float | None,
        source: str | None,
        actor: Actor,
    ) -> Code | None:
        deadline = time.monotonic() + wait
        with self._bells.waiting(cred_id):
            while True:
                ticket = self._bells.ticket(cred_id)  # before looking: no lost wake-ups
                code = await self._take(tenant_id, cred_id, since, source, actor)
                if code is not None:
                    return code
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._bells.closing:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ticket.wait(), remaining)

    async def _take(
        self, tenant_id: str, cred_id: str, since: float | None, source: str | None, actor: Actor
    ) -> Code | None:
        now = self._clock()
        if self._db.is_sqlite:
            # A cheap look first: on SQLite the write below takes the one write lock.
            # (On PostgreSQL the write is as cheap when empty, and one round trip less.)
            async with self._db.read() as conn:
                if not await code_rows.has_code(
                    conn, tenant_id, cred_id, now=now, since=since, source=source
                ):
                    return None
        async with self._db.write() as conn:
            row = await code_rows.take_code(
                conn,
                tenant_id,
                cred_id,
                now=now,
                since=since,
                source=source,
                lock=not self._db.is_sqlite,
            )
            if row is None:
                return None
            answered = row.source == "user" and row.id.startswith(f"{ids.INTERACTION}_")
            # A person's answer to an interaction (the row has the interaction's id):
            # settle the interaction in this transaction, so it is never handed out twice.
            if answered and not await interaction_rows.settle_taken(conn, tenant_id, row.id):
                return None
            wrapped = await credential_rows.get_sealed(conn, tenant_id, cred_id)
            await self._audit.append(
                conn, tenant_id, actor, "code.read", credential_id=cred_id, object_id=row.id
            )
        if answered:
            self._bells.ring(row.id)  # its own long poll now answers 410
        assert wrapped is not None  # the code's row cascades with its credential
        code = self._vault.open_field_under(
            wrapped[0], row.code, tenant_id=tenant_id, credential_id=cred_id, field=f"code:{row.id}"
        )
        return Code(code.decode(), row.source, received_at=row.received_at, sender=row.sender)

    async def sweep(self) -> int:
        """Destroy received codes whose time is up; returns how many."""
        async with self._db.write() as conn:
            return await code_rows.delete_expired(conn, self._clock())

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
            counter=row.counter,
            issuer=None,
            label=None,
        )

    async def _totp(
        self, tenant_id: str, cred_id: str, row: Any, wait: float, min_validity: int
    ) -> Code | None:
        auth = self._authenticator(tenant_id, cred_id, row)
        if min_validity >= auth.period:
            raise Invalid(
                f"min_validity must be shorter than the authenticator's period ({auth.period} s)"
            )
        now = self._clock()
        code, valid_until = otp.totp_window(auth, now)
        if valid_until - now < min_validity:
            pause = valid_until - now
            if pause > wait:
                return None
            await asyncio.sleep(pause)
            code, valid_until = otp.totp_window(auth, max(self._clock(), valid_until))
        return Code(code, "totp", expires_at=valid_until)

    async def _hotp(self, tenant_id: str, cred_id: str, actor: Actor) -> Code:
        async with self._db.write() as conn:
            counter = await credential_rows.take_hotp_counter(conn, tenant_id, cred_id)
            row = await credential_rows.get_authenticator(conn, tenant_id, cred_id)
            if counter is None or row is None or row.kind != "hotp":
                # The authenticator was replaced or removed between our two reads.
                raise NotFound("this credential's authenticator changed; ask again")
            await self._audit.append(
                conn, tenant_id, actor, "authenticator.read", credential_id=cred_id
            )
        auth = self._authenticator(tenant_id, cred_id, row)
        return Code(otp.hotp_code(auth, counter), "hotp")
