"""Queries for master-key rotation, over every table whose rows hold a wrapped data key.

Credentials and webhook endpoints each have ``id``, ``tenant_id``,
``data_key`` (wrapped by a master key version) and ``key_version``; the
rotation rewraps them in batches with a compare-and-set, so a concurrent
change is never overwritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import col

from .db import Conn
from .models import Credential, Webhook

#: The tables whose rows hold a wrapped data key.
KEYED: tuple[type[Credential] | type[Webhook], ...] = (Credential, Webhook)

Keyed = type[Credential] | type[Webhook]


async def not_at(conn: Conn, table: Keyed, version: int, *, limit: int) -> Sequence[Any]:
    """A batch of ``(id, tenant_id, data_key, key_version)`` wrapped under other versions."""
    stmt = (
        select(col(table.id), col(table.tenant_id), col(table.data_key), col(table.key_version))
        .where(col(table.key_version) != version)
        .order_by(col(table.id))
        .limit(limit)
    )
    return (await conn.execute(stmt)).all()


async def replace(
    conn: Conn, table: Keyed, row_id: str, *, old: bytes, new: bytes, version: int
) -> bool:
    """Swap a wrapped data key only if nobody changed it meanwhile."""
    result = await conn.execute(
        update(table)
        .where(col(table.id) == row_id, col(table.data_key) == old)
        .values(data_key=new, key_version=version)
    )
    return bool(result.rowcount)


async def count_by_version(conn: Conn, table: Keyed) -> dict[int, int]:
    stmt = select(col(table.key_version), func.count()).group_by(col(table.key_version))
    return {int(v): int(n) for v, n in (await conn.execute(stmt)).all()}
