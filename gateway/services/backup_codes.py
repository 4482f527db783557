"""Backup codes: a credential's recovery codes, sealed, each handed out once.

``replace`` swaps the whole set in one transaction (and records
``backup_codes.set`` in the audit trail).  ``take`` deletes and returns the
first code left, with its ``backup_code.read`` event in the same transaction;
concurrent takers on any replica each get a different code (see
``store.backup_codes``).  When a take leaves two codes, ``backup_codes.low``
is queued for the tenant's webhooks in that transaction too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .. import events, ids
from ..errors import Conflict, Invalid, NotFound
from ..store import backup_codes as backup_rows
from ..store import credentials as credential_rows
from ..store.db import Database
from ..store.webhooks import enqueue
from ..vault import Vault
from .audit import SYSTEM, Actor, AuditTrail

log = logging.getLogger("otpgate.backup_codes")

MAX_CODES = 50
MAX_LENGTH = 64
#: ``backup_codes.low`` fires when a take leaves this many.
LOW = 2


@dataclass(frozen=True, slots=True)
class TakenCode:
    code: str
    remaining: int

    def __repr__(self) -> str:
        return f"TakenCode(remaining={self.remaining}, code=<hidden>)"


def clean_codes(codes: Sequence[str]) -> list[str]:
    """The codes as stored: trimmed; Invalid for an empty, too long or unprintable one."""
    if not 1 <= len(codes) <= MAX_CODES:
        raise Invalid(f"'codes' must hold 1 to {MAX_CODES} codes")
    cleaned = []
    for n, raw in enumerate(codes, start=1):
        code = raw.strip()
        if not code or len(code) > MAX_LENGTH or not code.isprintable():
            raise Invalid(f"code {n} must be 1 to {MAX_LENGTH} printable characters")
        cleaned.append(code)
    return cleaned


class BackupCodes:
    def __init__(
        self,
        db: Database,
        vault: Vault,
        audit: AuditTrail,
        *,
        events_queued: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._vault = vault
        self._audit = audit
        self._events_queued = events_queued
        self._clock = clock

    async def replace(
        self, tenant_id: str, cred_id: str, codes: Sequence[str], *, actor: Actor = SYSTEM
    ) -> int:
        """Store *codes* as the credential's whole set; how many it now holds."""
        cleaned = clean_codes(codes)
        async with self._db.write() as conn:
            sealed = await credential_rows.get_sealed(conn, tenant_id, cred_id)
            if sealed is None:
                raise NotFound("no such credential")
            dek = self._vault.unwrap_data_key(sealed[0], tenant_id=tenant_id, credential_id=cred_id)
            rows = []
            for position, code in enumerate(cleaned):
                row_id = ids.new_id(ids.BACKUP_CODE)
                rows.append(
                    {
                        "id": row_id,
                        "tenant_id": tenant_id,
                        "credential_id": cred_id,
                        "position": position,
                        "code": self._vault.seal_field(
                            dek,
                            code.encode(),
                            tenant_id=tenant_id,
                            credential_id=cred_id,
                            field=f"backup:{row_id}",
                        ),
                    }
                )
            await backup_rows.replace(conn, tenant_id, cred_id, rows)
            await self._audit.append(
                conn, tenant_id, actor, "backup_codes.set", credential_id=cred_id
            )
        log.info(
            "backup codes replaced",
            extra={"tenant": tenant_id, "credential": cred_id, "count": len(rows)},
        )
        return len(rows)

    async def take(self, tenant_id: str, cred_id: str, *, actor: Actor = SYSTEM) -> TakenCode:
        """Hand out one code, once; Conflict ``no_backup_codes`` when none is left."""
        low = False
        async with self._db.write() as conn:
            sealed = await credential_rows.get_sealed(conn, tenant_id, cred_id)
            if sealed is None:
                raise NotFound("no such credential")
            row = await backup_rows.take(conn, tenant_id, cred_id, lock=not self._db.is_sqlite)
            if row is None:
                raise Conflict("this credential has no backup codes left", code="no_backup_codes")
            left = await backup_rows.remaining(conn, tenant_id, cred_id)
            await self._audit.append(
                conn, tenant_id, actor, "backup_code.read", credential_id=cred_id, object_id=row.id
            )
            if left == LOW:
                event = events.backup_codes_low(credential_id=cred_id, remaining=left)
                await enqueue(conn, tenant_id, event.type, event.data, now=self._clock())
                low = True
        if low:
            self._events_queued()
        code = self._vault.open_field_under(
            sealed[0],
            row.code,
            tenant_id=tenant_id,
            credential_id=cred_id,
            field=f"backup:{row.id}",
        )
        return TakenCode(code.decode(), left)

    async def remaining(self, tenant_id: str, cred_id: str) -> int:
        async with self._db.read() as conn:
            if await credential_rows.get_public(conn, tenant_id, cred_id) is None:
                raise NotFound("no such credential")
            return await backup_rows.remaining(conn, tenant_id, cred_id)
