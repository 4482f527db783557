"""Queries on forwarding rules and their outbox of sealed copies.

A copy moves ``pending`` -> (claimed with a lease) -> ``sending`` -> deleted.
Claiming (the rules of :mod:`gateway.store.outbox`) and marking are
compare-and-set updates, so replicas sharing one database never work on the
same copy at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlmodel import col

from .db import Conn
from .models import Credential, Forward, ForwardOutbox
from .outbox import OutboxTable

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


# Only copies not yet marked as sending may be claimed: a marked one is never sent again.
_OUTBOX = OutboxTable(_O, col(_O.state) == "pending")


async def any_due(conn: Conn, now: float) -> bool:
    """Whether some copy is due and free: a cheap read before taking the write lock."""
    return await _OUTBOX.any_due(conn, now)


async def claim(conn: Conn, now: float, *, lease: float, limit: int) -> Sequence[Any]:
    """Lease up to *limit* due copies and count the attempt each is about to get.

    Returns the copies with their rule's channel and target and their
    credential's name, data key and phone number.
    """
    ids = await _OUTBOX.claim(conn, now, lease=lease, limit=limit)
    if not ids:
        return []
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
        .where(col(_O.id).in_(ids))
    )
    return (await conn.execute(stmt)).all()


async def release(conn: Conn, copy_ids: Sequence[str]) -> None:
    """Give back leases whose attempts never finished (shutdown).

    A copy still pending is then due at once; one already marked as sending
    is found by :func:`interrupted` at once, and not sent again.
    """
    await _OUTBOX.release(conn, copy_ids)


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
