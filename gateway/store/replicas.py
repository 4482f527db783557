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


async def counts(conn: Conn, now: float) -> dict[str, int]:
    """How much work waits: codes, interactions, forwarded copies, webhook deliveries."""

    async def count(stmt: Any) -> int:
        return int((await conn.execute(stmt)).scalar_one())

    return {
        "codes_waiting": await count(
            select(func.count()).where(col(ReceivedCode.expires_at) > now)
        ),
        "interactions_open": await count(
            select(func.count()).where(col(Interaction.status).in_(("pending", "submitted")))
        ),
        "forwards_pending": await count(select(func.count()).select_from(ForwardOutbox)),
        "webhook_deliveries_pending": await count(
            select(func.count()).select_from(WebhookDelivery)
        ),
    }
