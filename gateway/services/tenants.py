"""Tenants, API keys and who is calling.

A key is found by its keyed hash and kept in a small cache so that nearly no
request pays a query for it.  The cache must never outlive a revocation by
more than a second: a revocation here drops it at once; one on another
replica drops it when that replica's notice arrives (``services.replicas``),
and while no notice can be heard entries live only half a second.  Each
key's ``last_used_at`` is gathered in memory and written every few seconds,
never by the request itself.

Keys are shown once and stored only as a keyed hash (HMAC-SHA256 with the key
ring's hash key), so a copy of the database does not let anyone call the API.
The configured admin key is compared in constant time.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .. import ids
from ..errors import Unauthenticated
from ..roles import Role
from ..store import tenants as tenant_rows
from ..store.db import Conn, Database
from ..vault import KeyRing
from .audit import Actor, AuditTrail

log = logging.getLogger("otpgate.tenants")

ADMIN = Role.ADMIN.value
OWNER = Role.OWNER.value
_MAX_KEY_LENGTH = 256
#: Seconds a verified key is trusted without asking the store again, while
#: revocations are sure to be heard (this process made them, or another
#: replica's notice arrives through a listening connection)...
KEY_CACHE_HEARD = 10.0
#: ...and otherwise: a revoked key must stop working within a second everywhere.
KEY_CACHE_UNHEARD = 0.5
_KEY_CACHE_SIZE = 10_000
K = TypeVar("K", bytes, str)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: the admin, or one of a tenant's keys."""

    role: str
    tenant_id: str | None
    key_id: str | None = None
    #: The credentials the key may reach; None for every credential of its tenant.
    credential_ids: frozenset[str] | None = None
    expires_at: float | None = None

    @property
    def actor(self) -> Actor:
        if self.role == ADMIN:
            return Actor(admin=True)
        return Actor(key_id=self.key_id)

    def reaches(self, credential_id: str) -> bool:
        return self.credential_ids is None or credential_id in self.credential_ids


@dataclass(frozen=True, slots=True)
class NewTenant:
    id: str
    name: str
    api_key: str


class TenantService:
    def __init__(
        self,
        db: Database,
        keyring: KeyRing,
        admin_key: str | None,
        audit: AuditTrail | None = None,
        *,
        hears_revocations: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._admin_hash = keyring.keyed_hash(admin_key) if admin_key else None
        self._audit = audit or AuditTrail(db, enabled=False)
        self._hears = hears_revocations
        self._clock = clock
        self._known: dict[bytes, tuple[float, Principal | None]] = {}
        self._by_id: dict[str, tuple[float, Principal | None]] = {}
        #: Moves on whenever keys change, so a lookup that began before a
        #: revocation never caches what it read.
        self._generation = 0
        self._used: dict[str, float] = {}

    async def create(self, name: str, *, actor: Actor | None = None) -> NewTenant:
        """A new tenant and its first API key, an owner key (the only time it is shown)."""
        tenant_id = ids.new_id(ids.TENANT)
        key = ids.new_api_key()
        at = ids.now()
        async with self._db.write() as conn:
            await tenant_rows.insert_tenant(conn, id=tenant_id, name=name, at=at)
            key_id = await self.insert_key(conn, key, OWNER, tenant_id, name="first owner key")
            await self._audit.append(
                conn, tenant_id, actor or Actor(admin=True), "key.created", object_id=key_id
            )
        log.info("tenant created", extra={"tenant": tenant_id})
        return NewTenant(tenant_id, name, key)

    def _cache_seconds(self) -> float:
        return KEY_CACHE_HEARD if self._hears() else KEY_CACHE_UNHEARD

    async def authenticate(self, presented: str) -> Principal:
        """The principal a bearer key stands for; Unauthenticated when none."""
        if not presented or len(presented) > _MAX_KEY_LENGTH:
            raise Unauthenticated("the API key is missing or not valid")
        digest = self._keyring.keyed_hash(presented)
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return Principal(ADMIN, None)
        principal = await self._lookup(
            self._known, digest, tenant_rows.find_api_key, remember_missing=False
        )
        if principal is None:
            raise Unauthenticated("the API key is missing or not valid")
        if self._expired(principal):
            raise Unauthenticated("this API key has expired")
        if principal.key_id is not None:
            self._used[principal.key_id] = self._clock()
        return principal

    async def principal_of_key(self, key_id: str) -> Principal | None:
        """The principal of an unrevoked, unexpired key by its id (a web session's key)."""
        principal = await self._lookup(
            self._by_id, key_id, tenant_rows.key_by_id, remember_missing=True
        )
        if principal is None or self._expired(principal):
            return None
        self._used[key_id] = self._clock()
        return principal

    async def _lookup(
        self,
        cache: dict[K, tuple[float, Principal | None]],
        key: K,
        find: Callable[[Conn, K], Awaitable[tenant_rows.KeyRow | None]],
        *,
        remember_missing: bool,
    ) -> Principal | None:
        """The unrevoked key *find* finds for *key*, from *cache* while it is fresh.

        A lookup that began before a revocation never caches what it read
        (the generation moved on).  An unknown key is cached only with
        *remember_missing* (never for presented keys: a flood of guesses
        would fill the cache).
        """
        now = time.monotonic()
        hit = cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        generation = self._generation
        async with self._db.read() as conn:
            found = await find(conn, key)
        principal = None if found is None else _principal(found)
        if generation == self._generation and (principal is not None or remember_missing):
            if len(cache) >= _KEY_CACHE_SIZE:
                cache.clear()
            cache[key] = (now + self._cache_seconds(), principal)
        return principal

    def _expired(self, principal: Principal) -> bool:
        return principal.expires_at is not None and principal.expires_at <= self._clock()

    def forget_keys(self) -> None:
        """Drop every cached key (one was revoked here or on another replica)."""
        self._generation += 1
        self._known.clear()
        self._by_id.clear()

    async def flush_last_used(self) -> int:
        """Write the keys' ``last_used_at`` gathered since the last flush; how many."""
        used, self._used = self._used, {}
        if not used:
            return 0
        try:
            async with self._db.write() as conn:
                await tenant_rows.touch_keys(conn, used)
        except Exception:
            # Not worth a failure anywhere: keep the times for the next flush.
            for key_id, at in used.items():
                self._used[key_id] = max(at, self._used.get(key_id, 0.0))
            raise
        return len(used)

    async def bootstrap_admin_key(self, data_dir: Path) -> str | None:
        """On a brand-new store with no configured admin key, make one and save it.

        Returns the new key (for the caller to print once), or None when nothing
        was created.  The file is written with mode 0600 before the key is
        committed, so a key that works is never lost.
        """
        if self._admin_hash is not None:
            return None
        async with self._db.write() as conn:
            if not await tenant_rows.is_empty(conn):
                return None
            key = ids.new_api_key(ids.ADMIN_KEY_PREFIX)
            _write_private(data_dir / "admin.key", key + "\n")
            await self.insert_key(conn, key, ADMIN, None, name="admin key")
        return key

    async def insert_key(
        self,
        conn: Conn,
        key: str,
        role: str,
        tenant_id: str | None,
        *,
        name: str = "",
        credential_ids: list[str] | None = None,
        expires_at: float | None = None,
    ) -> str:
        """Store a key as its keyed hash, with a short prefix for people to recognise it."""
        key_id = ids.new_id(ids.API_KEY)
        await tenant_rows.insert_api_key(
            conn,
            id=key_id,
            tenant_id=tenant_id,
            role=role,
            key_hash=self._keyring.keyed_hash(key),
            prefix=key[:12],
            at=ids.now(),
            name=name,
            credential_ids=credential_ids,
            expires_at=expires_at,
        )
        return key_id


def _principal(row: tenant_rows.KeyRow) -> Principal:
    return Principal(
        row.role,
        row.tenant_id,
        row.id,
        None if row.credential_ids is None else frozenset(row.credential_ids),
        row.expires_at,
    )


def _write_private(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, content.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
