"""A tenant's API keys: created with a role, listed, revoked.

A new key is shown once; only its keyed hash is stored (see ``tenants``).
A revocation drops this replica's key cache at once and tells the other
replicas to drop theirs (``store.signals.keys_changed``), so a revoked key
gets 401 everywhere within a second.  The tenant's last owner key cannot be
revoked: nobody could manage the tenant's keys after it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .. import ids
from ..errors import Conflict, Invalid, NotFound
from ..roles import TENANT_ROLES, Role
from ..store import credentials as credential_rows
from ..store import signals
from ..store import tenants as tenant_rows
from ..store.db import Database
from .audit import Actor, AuditTrail
from .tenants import TenantService

log = logging.getLogger("otpgate.keys")

#: How many credentials one key may be limited to.
MAX_CREDENTIALS = 1000


@dataclass(frozen=True, slots=True)
class NewKey:
    id: str
    name: str
    role: str
    credential_ids: list[str] | None
    expires_at: float | None
    #: The key itself: shown once, never stored.
    key: str

    def __repr__(self) -> str:
        return f"NewKey(id={self.id!r}, role={self.role!r}, key=<hidden>)"


KeyInfo = tenant_rows.KeyListing


class ApiKeys:
    def __init__(
        self,
        db: Database,
        tenants: TenantService,
        audit: AuditTrail,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._tenants = tenants
        self._audit = audit
        self._clock = clock

    async def create(
        self,
        tenant_id: str,
        actor: Actor,
        *,
        name: str,
        role: str,
        credential_ids: Sequence[str] | None = None,
        expires_at: float | None = None,
    ) -> NewKey:
        if role not in TENANT_ROLES:
            raise Invalid("'role' must be owner, manager or agent")
        limited = None if credential_ids is None else list(dict.fromkeys(credential_ids))
        if limited is not None:
            if role == Role.OWNER:
                raise Invalid("an owner key reaches every credential; omit 'credential_ids'")
            if not limited or len(limited) > MAX_CREDENTIALS:
                raise Invalid(f"'credential_ids' must list 1 to {MAX_CREDENTIALS} credentials")
        if expires_at is not None and expires_at <= self._clock():
            raise Invalid("'expires_at' must be in the future")
        key = ids.new_api_key()
        async with self._db.write() as conn:
            for cred_id in limited or ():
                if await credential_rows.get_public(conn, tenant_id, cred_id) is None:
                    raise Invalid(f"no credential {cred_id} in this tenant")
            key_id = await self._tenants.insert_key(
                conn,
                key,
                role,
                tenant_id,
                name=name,
                credential_ids=limited,
                expires_at=expires_at,
            )
            await self._audit.append(conn, tenant_id, actor, "key.created", object_id=key_id)
        log.info("API key created", extra={"tenant": tenant_id, "key": key_id, "role": role})
        return NewKey(key_id, name, role, limited, expires_at, key)

    async def list(self, tenant_id: str) -> list[KeyInfo]:
        async with self._db.read() as conn:
            return await tenant_rows.list_keys(conn, tenant_id)

    async def revoke(self, tenant_id: str, actor: Actor, key_id: str) -> None:
        """Revoke a key; 404 when unknown or already revoked, 409 for the last owner key."""
        now = self._clock()
        async with self._db.write() as conn:
            owners = await tenant_rows.live_owner_keys(conn, tenant_id, now)
            if owners == [key_id]:
                raise Conflict(
                    "this is the tenant's last owner key; create another owner key first",
                    code="last_owner_key",
                )
            if not await tenant_rows.revoke_key(conn, tenant_id, key_id, now):
                raise NotFound("no such API key")
            await self._audit.append(conn, tenant_id, actor, "key.revoked", object_id=key_id)
            await signals.keys_changed(conn)
        self._tenants.forget_keys()
        log.info("API key revoked", extra={"tenant": tenant_id, "key": key_id})
