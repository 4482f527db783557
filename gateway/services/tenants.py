"""Tenants, API keys and who is calling.

Keys are shown once and stored only as a keyed hash (HMAC-SHA256 with the key
ring's hash key), so a copy of the database does not let anyone call the API.
The configured admin key is compared in constant time.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .. import ids
from ..errors import Unauthenticated
from ..store import tenants as tenant_rows
from ..store.db import Conn, Database
from ..vault import KeyRing

log = logging.getLogger("otpgate.tenants")

ADMIN = "admin"
TENANT = "tenant"
_MAX_KEY_LENGTH = 256
#: Seconds a verified key is trusted without asking the store again, and how many are kept.
#: Every request carries a key; this saves a query on nearly all of them.  Keys are
#: never deleted yet; when they can be, deleting one must also clear this cache.
_KEY_CACHE_SECONDS = 5.0
_KEY_CACHE_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: the admin, or one tenant."""

    role: str
    tenant_id: str | None
    key_id: str | None = None
    #: The credentials the key may reach; None for all.
    credential_ids: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class NewTenant:
    id: str
    name: str
    api_key: str


class TenantService:
    def __init__(self, db: Database, keyring: KeyRing, admin_key: str | None) -> None:
        self._db = db
        self._keyring = keyring
        self._admin_hash = keyring.keyed_hash(admin_key) if admin_key else None
        self._known: dict[bytes, tuple[float, Principal]] = {}

    async def create(self, name: str) -> NewTenant:
        """A new tenant and its first API key (the only time the key is shown)."""
        tenant_id = ids.new_id(ids.TENANT)
        key = ids.new_api_key()
        at = ids.now()
        async with self._db.write() as conn:
            await tenant_rows.insert_tenant(conn, id=tenant_id, name=name, at=at)
            await self._insert_key(conn, key, TENANT, tenant_id)
        log.info("tenant created", extra={"tenant": tenant_id})
        return NewTenant(tenant_id, name, key)

    async def authenticate(self, presented: str) -> Principal:
        """The principal a bearer key stands for; Unauthenticated when none."""
        if not presented or len(presented) > _MAX_KEY_LENGTH:
            raise Unauthenticated("the API key is missing or not valid")
        digest = self._keyring.keyed_hash(presented)
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return Principal(ADMIN, None)
        now = time.monotonic()
        hit = self._known.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self._db.read() as conn:
            found = await tenant_rows.find_api_key(conn, digest)
        if found is None:
            raise Unauthenticated("the API key is missing or not valid")
        principal = Principal(*found)
        if len(self._known) >= _KEY_CACHE_SIZE:
            self._known.clear()
        self._known[digest] = (now + _KEY_CACHE_SECONDS, principal)
        return principal

    async def principal_of_key(self, key_id: str) -> Principal | None:
        """The principal of a key id; None when it is unknown."""
        async with self._db.read() as conn:
            found = await tenant_rows.key_by_id(conn, key_id)
        return None if found is None else Principal(*found)

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
            await self._insert_key(conn, key, ADMIN, None)
        return key

    async def _insert_key(self, conn: Conn, key: str, role: str, tenant_id: str | None) -> None:
        """Store a key as its keyed hash, with a short prefix for people to recognise it."""
        await tenant_rows.insert_api_key(
            conn,
            id=ids.new_id(ids.API_KEY),
            tenant_id=tenant_id,
            role=role,
            key_hash=self._keyring.keyed_hash(key),
            prefix=key[:12],
            at=ids.now(),
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
