"""Queries on login attempts.

One open login per credential is the database's rule (``uq_logins_open``, a
unique index over the open rows): opening a second raises ``IntegrityError``
on any replica.  Finishing and expiring are conditional updates on
``status = 'open'``, so a login ends once whoever gets there first (an agent,
another replica's sweeper).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlmodel import col

from .db import Conn, any_row
from .models import Login

OPEN = "open"
_L = Login
_COLUMNS = (
    col(_L.id),
    col(_L.tenant_id),
    col(_L.credential_id),
    col(_L.status),
    col(_L.started_at),
    col(_L.expires_at),
    col(_L.finished_at),
    col(_L.not_before),
    col(_L.last_kind),
    col(_L.last_received_at),
    col(_L.last_step),
    col(_L.refused_step),
)


async def insert_login(conn: Conn, **values: Any) -> None:
    await conn.execute(insert(_L).values(**values))


async def get(conn: Conn, tenant_id: str, login_id: str) -> Any:
    stmt = select(*_COLUMNS).where(col(_L.tenant_id) == tenant_id, col(_L.id) == login_id)
    return (await conn.execute(stmt)).first()


async def open_of(conn: Conn, credential_id: str) -> Any:
    """The credential's open login, or None."""
    stmt = select(*_COLUMNS).where(col(_L.credential_id) == credential_id, col(_L.status) == OPEN)
    return (await conn.execute(stmt)).first()


async def finish(conn: Conn, login_id: str, *, status: str, now: float) -> bool:
    """End an open login; False when it had ended already."""
    result = await conn.execute(
        update(_L)
        .where(col(_L.id) == login_id, col(_L.status) == OPEN)
        .values(status=status, finished_at=now)
    )
    return bool(result.rowcount)


async def any_due(conn: Conn, now: float) -> bool:
    """Whether an open login's time is up."""
    return await any_row(
        conn, col(_L.expires_at), col(_L.status) == OPEN, col(_L.expires_at) <= now
    )


async def expire_due(conn: Conn, now: float, *, credential_id: str | None = None) -> list[Any]:
    """Finish as ``failed`` every open login whose time is up; the ones this call ended."""
    stmt = (
        update(_L)
        .where(col(_L.status) == OPEN, col(_L.expires_at) <= now)
        .values(status="failed", finished_at=now)
        .returning(col(_L.id), col(_L.tenant_id), col(_L.credential_id))
    )
    if credential_id is not None:
        stmt = stmt.where(col(_L.credential_id) == credential_id)
    return list((await conn.execute(stmt)).all())


async def handed(
    conn: Conn,
    login_id: str,
    *,
    kind: str,
    received_at: float | None,
    step: int | None,
) -> None:
    """Remember what the login handed out last (what a reject refers to)."""
    await conn.execute(
        update(_L)
        .where(col(_L.id) == login_id, col(_L.status) == OPEN)
        .values(last_kind=kind, last_received_at=received_at, last_step=step)
    )


async def refuse(conn: Conn, login_id: str, **values: Any) -> bool:
    """Record a reject: a later ``not_before`` or a refused TOTP step; forget what was handed."""
    result = await conn.execute(
        update(_L)
        .where(col(_L.id) == login_id, col(_L.status) == OPEN, col(_L.last_kind).is_not(None))
        .values(last_kind=None, last_received_at=None, last_step=None, **values)
    )
    return bool(result.rowcount)
