"""Queries on forwarding rules and their outbox of sealed copies.

A copy moves ``pending`` -> (claimed with a lease) -> ``sending`` -> deleted.
Claiming and marking are compare-and-set updates, so replicas sharing one
database never work on the same copy at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlmodel import col

from .db import Conn
from .models import Credential, Forward, ForwardOutbox

_F = Forward
_O = ForwardOutbox
_PUBLIC = (
    col(_F.id),
    col(_F.credential_id),
    col(_F.channel),
    col(_F.target),
    col(_F.created_at),
    col(_F.last_status),
    col(_F.last_error),
    col(_F.last_attempt_at),
)


async def insert_forward(conn: Conn, **values: Any) -> None:
    await conn.execute(insert(_F).values(**values))


async def count_forwards(conn: Conn, cred_id: str) -> int:
    stmt = select(func.count()).where(col(_F.credential_id) == cred_id)
    return int((await conn.execute(stmt)).scalar_one())


async def get_forward(conn: Conn, tenant_id: str, cred_id: str, forward_id: str) -> Any:
    stmt = select(*_PUBLIC).where(
        col(_F.id) == forward_id, col(_F.tenant_id) == tenant_id, col(_F.credential_id) == cred_id
    )
    return (await conn.execute(stmt)).first()


async def list_forwards(conn: Conn, tenant_id: str, cred_id: str) -> Sequence[Any]:
    stmt = (
        select(*_PUBLIC, func.count(col(_O.id)).label("pending"))
        .outerjoin(_O, col(_O.forward_id) == col(_F.id))
        .where(col(_F.tenant_id) == tenant_id, col(_F.credential_id) == cred_id)
        .group_by(*_PUBLIC)
        .order_by(col(_F.created_at), col(_F.id))
    )
    return (await conn.execute(stmt)).all()


async def delete_forward(conn: Conn, tenant_id: str, cred_id: str, forward_id: str) -> bool:
    result = await conn.execute(
        delete(_F).where(
            col(_F.id) == forward_id,
            col(_F.tenant_id) == tenant_id,
            col(_F.credential_id) == cred_id,
        )
    )
    return bool(result.rowcount)


async def due(conn: Conn, now: float, limit: int) -> list[str]:
    """Ids of pending copies whose time has come and that nobody holds."""
    stmt = (
        select(col(_O.id))
        .where(
            col(_O.state) == "pending",
            col(_O.next_attempt_at) <= now,
            col(_O.lease_until) < now,
        )
        .order_by(col(_O.next_attempt_at))
        .limit(limit)
    )
    return list((await conn.execute(stmt)).scalars().all())


async def claim(conn: Conn, copy_id: str, now: float, lease_until: float) -> Any:
    """Take one due copy for an attempt; its row (with the rule's target), or None if taken."""
    result = await conn.execute(
        update(_O)
        .where(col(_O.id) == copy_id, col(_O.state) == "pending", col(_O.lease_until) < now)
        .values(lease_until=lease_until, attempts=col(_O.attempts) + 1)
    )
    if not result.rowcount:
        return None
    stmt = (
        select(
            col(_O.id),
            col(_O.forward_id),
            col(_O.tenant_id),
            col(_O.credential_id),
            col(_O.payload),
            col(_O.attempts),
            col(_O.created_at),
            col(_F.channel),
            col(_F.target),
            col(Credential.name),
            col(Credential.data_key),
            col(Credential.phone_number),
        )
        .join(_F, col(_F.id) == col(_O.forward_id))
        .join(Credential, col(Credential.id) == col(_O.credential_id))
        .where(col(_O.id) == copy_id)
    )
    return (await conn.execute(stmt)).first()


async def mark_sending(conn: Conn, copy_id: str, lease_until: float) -> bool:
    """Record that the copy is about to leave: after a crash it is not sent again."""
    result = await conn.execute(
        update(_O)
        .where(col(_O.id) == copy_id, col(_O.state) == "pending")
        .values(state="sending", lease_until=lease_until)
    )
    return bool(result.rowcount)


async def reschedule(conn: Conn, copy_id: str, next_at: float, error: str) -> None:
    await conn.execute(
        update(_O)
        .where(col(_O.id) == copy_id)
        .values(state="pending", next_attempt_at=next_at, lease_until=0.0, last_error=error)
    )


async def remove_copy(conn: Conn, copy_id: str) -> None:
    await conn.execute(delete(_O).where(col(_O.id) == copy_id))


async def interrupted(conn: Conn, now: float, limit: int) -> Sequence[Any]:
    """Copies whose sender died after recording the attempt: (id, forward_id)."""
    stmt = (
        select(col(_O.id), col(_O.forward_id))
        .where(col(_O.state) == "sending", col(_O.lease_until) < now)
        .limit(limit)
    )
    return (await conn.execute(stmt)).all()


async def set_status(
    conn: Conn, forward_id: str, status: str, error: str | None, at: float
) -> None:
    await conn.execute(
        update(_F)
        .where(col(_F.id) == forward_id)
        .values(last_status=status, last_error=error, last_attempt_at=at)
    )
