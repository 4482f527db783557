"""The claim rules shared by the outbox tables: forwarded copies and webhook deliveries.

A row is due when its ``next_attempt_at`` has come and nobody holds its
lease (``lease_until`` is in the past).  Claiming is a compare-and-set on
``lease_until`` that also counts the attempt about to be made, so replicas
sharing one database never hold the same row at once; on PostgreSQL ``SKIP
LOCKED`` also keeps them from queueing behind each other's picks.  A lease
given back (``lease_until`` set to 0) makes the row due again at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Float, bindparam, select, update
from sqlalchemy.sql import ColumnElement
from sqlmodel import col

from .db import Conn
from .models import ForwardOutbox, WebhookDelivery

Table = type[ForwardOutbox] | type[WebhookDelivery]


class OutboxTable:
    """The claim queries of one outbox table, built once.

    *when* narrows what may be claimed beyond being due (forwarded copies:
    only those not already marked as sending).
    """

    def __init__(self, table: Table, *when: ColumnElement[bool]) -> None:
        self._table = table
        self._when = when
        # Asked after every burst of commits: built here, not on each call.
        self._any_due = (
            select(col(table.id)).where(*self._due(bindparam("now", type_=Float))).limit(1)
        )

    def _due(self, now: Any) -> tuple[ColumnElement[bool], ...]:
        """Due and not leased at *now* (a time, or a bound parameter standing for one)."""
        table = self._table
        return (col(table.next_attempt_at) <= now, col(table.lease_until) < now, *self._when)

    async def any_due(self, conn: Conn, now: float) -> bool:
        """Whether some row is due and free: a cheap read before taking the write lock."""
        return (await conn.execute(self._any_due, {"now": now})).first() is not None

    async def claim(self, conn: Conn, now: float, *, lease: float, limit: int) -> list[str]:
        """Lease up to *limit* due rows for *lease* seconds; the ids of those taken."""
        table = self._table
        picked = (
            select(col(table.id))
            .where(*self._due(now))
            .order_by(col(table.next_attempt_at))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = [r[0] for r in (await conn.execute(picked)).all()]
        if not ids:
            return []
        claimed = await conn.execute(
            update(table)
            .where(col(table.id).in_(ids), *self._due(now))
            .values(lease_until=now + lease, attempts=col(table.attempts) + 1)
            .returning(col(table.id))
        )
        return [r[0] for r in claimed.all()]

    async def release(self, conn: Conn, ids: Sequence[str]) -> None:
        """Give back leases whose attempts never finished (shutdown), so they are due at once."""
        table = self._table
        await conn.execute(
            update(table).where(col(table.id).in_(list(ids))).values(lease_until=0.0)
        )
