"""Queries on the replicas' heartbeats, and the counts ``otpgate status`` prints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlmodel import col

from .db import Conn
from .models import ForwardOutbox, Interaction, ReceivedCode, Replica, WebhookDelivery


async def beat(conn: Conn, **values: Any) -> None:
    result = await conn.execute(
        update(Replica)
        .where(col(Replica.id) == values["id"])
        .values(seen_at=values["seen_at"], draining=values["draining"])
    )
    if not result.rowcount:
        await conn.execute(insert(Replica).values(**values))


async def leave(conn: Conn, replica_id: str) -> None:
    await conn.execute(delete(Replica).where(col(Replica.id) == replica_id))


async def seen_since(conn: Conn, since: float) -> Sequence[Any]:
    stmt = (
        select(Replica)
        .where(col(Replica.seen_at) >= since)
        .order_by(col(Replica.hostname), col(Replica.started_at))
    )
    return (await conn.execute(stmt)).all()


async def forget_before(conn: Conn, before: float) -> int:
    result = await conn.execute(delete(Replica).where(col(Replica.seen_at) < before))
    return int(result.rowcount or 0)


async def _count(conn: Conn, stmt: Any) -> int:
    return int((await conn.execute(stmt)).scalar_one())


async def queues(conn: Conn) -> dict[str, int]:
    """The sending queues' lengths: forwarded copies and webhook deliveries.

    Each holds only work not yet done, so counting it stays cheap however
    much the store keeps (what ``/metrics`` reads on every scrape).
    """
    return {
        "forwards_pending": await _count(conn, select(func.count()).select_from(ForwardOutbox)),
        "webhook_deliveries_pending": await _count(
            conn, select(func.count()).select_from(WebhookDelivery)
        ),
    }


async def counts(conn: Conn, now: float) -> dict[str, int]:
    """How much work waits: codes, interactions, forwarded copies, webhook deliveries.

    The codes not yet expired are read from their index one by one: for
    ``otpgate status``, not for a scrape.
    """
    return {
        "codes_waiting": await _count(
            conn, select(func.count()).where(col(ReceivedCode.expires_at) > now)
        ),
        "interactions_open": await _count(
            conn,
            select(func.count()).where(col(Interaction.status).in_(("pending", "submitted"))),
        ),
        **await queues(conn),
    }
