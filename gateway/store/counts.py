"""Messages counted per credential, day and channel: what the charts of the pages read.

Received codes are deleted once handed out, so the counts are kept apart:
:func:`add` runs inside the inbound write (one upsert per group of a batch,
never one per message), :func:`daily` reads them, :func:`forget` drops
days older than the charts show.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlmodel import col

from .db import Conn, any_row
from .models import MessageCount

_M = MessageCount


@dataclass(slots=True)  # not frozen: see ForwardCopyRow in .inbound
class CountRow:
    """One message reaching one credential on one day, by one channel."""

    tenant_id: str
    credential_id: str
    day: str
    channel: str
    code: bool


# The same statement on SQLite (3.24+) and PostgreSQL; the table is named in full
# in DO UPDATE, where both accept it.
_UPSERT = text(
    "INSERT INTO message_counts (tenant_id, credential_id, day, channel, messages, codes) "
    "VALUES (:tenant_id, :credential_id, :day, :channel, :messages, :codes) "
    "ON CONFLICT (tenant_id, credential_id, day, channel) DO UPDATE SET "
    "messages = message_counts.messages + excluded.messages, "
    "codes = message_counts.codes + excluded.codes"
)


async def add(conn: Conn, rows: Iterable[CountRow]) -> None:
    """Count *rows*: one upsert per (credential, day, channel) group."""
    groups: dict[tuple[str, str, str, str], list[int]] = {}
    for row in rows:
        key = (row.tenant_id, row.credential_id, row.day, row.channel)
        tally = groups.get(key)
        if tally is None:
            tally = groups[key] = [0, 0]
        tally[0] += 1
        tally[1] += row.code
    if groups:
        params = [
            {
                "tenant_id": t,
                "credential_id": c,
                "day": d,
                "channel": ch,
                "messages": n,
                "codes": k,
            }
            for (t, c, d, ch), (n, k) in groups.items()
        ]
        await conn.execute(_UPSERT, params)


async def daily(
    conn: Conn,
    tenant_id: str,
    *,
    since: str,
    credential_id: str | None = None,
    only: Collection[str] | None = None,
) -> list[Any]:
    """``(day, channel, messages, codes)`` from day *since* on, summed over credentials."""
    stmt = (
        select(
            col(_M.day),
            col(_M.channel),
            func.sum(col(_M.messages)).label("messages"),
            func.sum(col(_M.codes)).label("codes"),
        )
        .where(col(_M.tenant_id) == tenant_id, col(_M.day) >= since)
        .group_by(col(_M.day), col(_M.channel))
    )
    if credential_id is not None:
        stmt = stmt.where(col(_M.credential_id) == credential_id)
    if only is not None:
        stmt = stmt.where(col(_M.credential_id).in_(list(only)))
    return list((await conn.execute(stmt)).all())


async def any_before(conn: Conn, *, before: str) -> bool:
    """Whether counts of days before *before* are kept."""
    return await any_row(conn, col(_M.day), col(_M.day) < before)


async def forget(conn: Conn, *, before: str) -> int:
    """Drop the counts of days before *before* (``YYYY-MM-DD``)."""
    result = await conn.execute(delete(_M).where(col(_M.day) < before))
    return int(result.rowcount or 0)
