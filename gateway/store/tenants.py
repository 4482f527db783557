"""Queries on tenants and API keys."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlmodel import col

from .db import Conn
from .models import ApiKey, Tenant


async def insert_tenant(conn: Conn, *, id: str, name: str, at: float) -> None:
    await conn.execute(insert(Tenant).values(id=id, name=name, created_at=at))


async def insert_api_key(
    conn: Conn,
    *,
    id: str,
    tenant_id: str | None,
    role: str,
    key_hash: bytes,
    prefix: str,
    at: float,
    name: str = "",
    credential_ids: list[str] | None = None,
    expires_at: float | None = None,
) -> None:
    await conn.execute(
        insert(ApiKey).values(
            id=id,
            tenant_id=tenant_id,
            role=role,
            key_hash=key_hash,
            prefix=prefix,
            created_at=at,
            name=name,
            credential_ids=None if credential_ids is None else json.dumps(credential_ids),
            expires_at=expires_at,
        )
    )


@dataclass(frozen=True, slots=True)
class KeyRow:
    id: str
    role: str
    tenant_id: str | None
    credential_ids: list[str] | None
    expires_at: float | None


def _key_row(row: Any) -> KeyRow:
    ids = None if row.credential_ids is None else list(json.loads(row.credential_ids))
    return KeyRow(row.id, row.role, row.tenant_id, ids, row.expires_at)


_KEY_COLUMNS = (
    col(ApiKey.id),
    col(ApiKey.role),
    col(ApiKey.tenant_id),
    col(ApiKey.credential_ids),
    col(ApiKey.expires_at),
)
# Built once: this runs on every authenticated request the cache does not answer.
_FIND_KEY = select(*_KEY_COLUMNS).where(
    col(ApiKey.key_hash) == bindparam("key_hash"), col(ApiKey.revoked_at).is_(None)
)
_KEY_BY_ID = select(*_KEY_COLUMNS).where(
    col(ApiKey.id) == bindparam("id"), col(ApiKey.revoked_at).is_(None)
)


async def find_api_key(conn: Conn, key_hash: bytes) -> KeyRow | None:
    """The unrevoked key with this hash, or None."""
    row = (await conn.execute(_FIND_KEY, {"key_hash": key_hash})).first()
    return None if row is None else _key_row(row)


async def key_by_id(conn: Conn, key_id: str) -> KeyRow | None:
    """The unrevoked key with this id, or None."""
    row = (await conn.execute(_KEY_BY_ID, {"id": key_id})).first()
    return None if row is None else _key_row(row)


@dataclass(frozen=True, slots=True)
class KeyListing:
    id: str
    name: str
    role: str
    credential_ids: list[str] | None
    expires_at: float | None
    created_at: float
    last_used_at: float | None
    prefix: str


async def list_keys(conn: Conn, tenant_id: str) -> list[KeyListing]:
    """A tenant's unrevoked keys, oldest first."""
    rows = await conn.execute(
        select(
            col(ApiKey.id),
            col(ApiKey.name),
            col(ApiKey.role),
            col(ApiKey.credential_ids),
            col(ApiKey.expires_at),
            col(ApiKey.created_at),
            col(ApiKey.last_used_at),
            col(ApiKey.prefix),
        )
        .where(col(ApiKey.tenant_id) == tenant_id, col(ApiKey.revoked_at).is_(None))
        .order_by(col(ApiKey.created_at), col(ApiKey.id))
    )
    return [
        KeyListing(
            r.id,
            r.name,
            r.role,
            None if r.credential_ids is None else list(json.loads(r.credential_ids)),
            r.expires_at,
            r.created_at,
            r.last_used_at,
            r.prefix,
        )
        for r in rows.all()
    ]


async def revoke_key(conn: Conn, tenant_id: str, key_id: str, at: float) -> bool:
    """Revoke one of a tenant's keys; False when there is no such unrevoked key."""
    result = await conn.execute(
        update(ApiKey)
        .where(
            col(ApiKey.id) == key_id,
            col(ApiKey.tenant_id) == tenant_id,
            col(ApiKey.revoked_at).is_(None),
        )
        .values(revoked_at=at)
    )
    return bool(result.rowcount)


async def live_owner_keys(conn: Conn, tenant_id: str, now: float) -> list[str]:
    """Ids of the tenant's owner keys that are neither revoked nor expired."""
    rows = await conn.execute(
        select(col(ApiKey.id)).where(
            col(ApiKey.tenant_id) == tenant_id,
            col(ApiKey.role) == "owner",
            col(ApiKey.revoked_at).is_(None),
            (col(ApiKey.expires_at).is_(None)) | (col(ApiKey.expires_at) > now),
        )
    )
    return [r[0] for r in rows.all()]


_TOUCH = (
    update(ApiKey)
    .where(
        col(ApiKey.id) == bindparam("key_id"),
        (col(ApiKey.last_used_at).is_(None)) | (col(ApiKey.last_used_at) < bindparam("at")),
    )
    .values(last_used_at=bindparam("at"))
)


async def touch_keys(conn: Conn, used: Mapping[str, float]) -> None:
    """Move keys' ``last_used_at`` forward (never back: replicas flush in any order)."""
    if used:
        await conn.execute(_TOUCH, [{"key_id": k, "at": at} for k, at in used.items()])


async def is_empty(conn: Conn) -> bool:
    """True when no tenant and no API key exist yet (a brand-new store)."""
    tenants = (await conn.execute(select(func.count()).select_from(Tenant))).scalar_one()
    keys = (await conn.execute(select(func.count()).select_from(ApiKey))).scalar_one()
    return tenants == 0 and keys == 0
