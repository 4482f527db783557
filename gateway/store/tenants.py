"""Queries on tenants and API keys."""

from __future__ import annotations

from sqlalchemy import bindparam, func, insert, select
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
) -> None:
    await conn.execute(
        insert(ApiKey).values(
            id=id, tenant_id=tenant_id, role=role, key_hash=key_hash, prefix=prefix, created_at=at
        )
    )


# Built once: this runs on every authenticated request.
_FIND_KEY = select(col(ApiKey.role), col(ApiKey.tenant_id), col(ApiKey.id)).where(
    col(ApiKey.key_hash) == bindparam("key_hash")
)


async def find_api_key(conn: Conn, key_hash: bytes) -> tuple[str, str | None, str] | None:
    """The ``(role, tenant_id, key id)`` owning a key hash, or None."""
    row = (await conn.execute(_FIND_KEY, {"key_hash": key_hash})).first()
    return None if row is None else (row[0], row[1], row[2])


async def key_by_id(conn: Conn, key_id: str) -> tuple[str, str | None, str] | None:
    """The ``(role, tenant_id, key id)`` of a key id, or None."""
    stmt = select(col(ApiKey.role), col(ApiKey.tenant_id), col(ApiKey.id)).where(
        col(ApiKey.id) == key_id
    )
    row = (await conn.execute(stmt)).first()
    return None if row is None else (row[0], row[1], row[2])


async def is_empty(conn: Conn) -> bool:
    """True when no tenant and no API key exist yet (a brand-new store)."""
    tenants = (await conn.execute(select(func.count()).select_from(Tenant))).scalar_one()
    keys = (await conn.execute(select(func.count()).select_from(ApiKey))).scalar_one()
    return tenants == 0 and keys == 0
