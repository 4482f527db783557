"""Queries on backup codes: a sealed set per credential, each taken (deleted) once.

Taking is one ``DELETE .. RETURNING`` of the first code in the set's order;
on PostgreSQL the row is chosen ``FOR UPDATE SKIP LOCKED``, so concurrent
takers on any replica each get a different code (SQLite's one writer does
the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlmodel import col

from .db import Conn
from .models import BackupCode

_B = BackupCode


async def replace(conn: Conn, tenant_id: str, cred_id: str, rows: Sequence[dict[str, Any]]) -> None:
    await conn.execute(
        delete(_B).where(col(_B.tenant_id) == tenant_id, col(_B.credential_id) == cred_id)
    )
    if rows:
        await conn.execute(insert(_B), list(rows))


async def take(conn: Conn, tenant_id: str, cred_id: str, *, lock: bool) -> Any:
    """Delete and return the first remaining code's ``(id, code)``, or None."""
    chosen = (
        select(col(_B.id))
        .where(col(_B.tenant_id) == tenant_id, col(_B.credential_id) == cred_id)
        .order_by(col(_B.position))
        .limit(1)
    )
    if lock:
        chosen = chosen.with_for_update(skip_locked=True)
    stmt = (
        delete(_B).where(col(_B.id) == chosen.scalar_subquery()).returning(col(_B.id), col(_B.code))
    )
    return (await conn.execute(stmt)).first()


async def remaining(conn: Conn, tenant_id: str, cred_id: str) -> int:
    stmt = (
        select(func.count())
        .select_from(_B)
        .where(col(_B.tenant_id) == tenant_id, col(_B.credential_id) == cred_id)
    )
    return int((await conn.execute(stmt)).scalar_one())
