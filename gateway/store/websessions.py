"""Queries on the authentication center's sessions (kept by the keyed hash of their token)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlmodel import col

from .db import Conn, any_row
from .models import WebSession

_S = WebSession


async def insert_session(conn: Conn, **values: Any) -> None:
    await conn.execute(insert(_S).values(**values))


async def find(conn: Conn, token_hash: bytes) -> Any:
    """The session row (tenant, key, times) for a token's hash, or None."""
    stmt = select(
        col(_S.tenant_id),
        col(_S.key_id),
        col(_S.created_at),
        col(_S.last_seen_at),
        col(_S.expires_at),
    ).where(col(_S.token_hash) == token_hash)
    return (await conn.execute(stmt)).first()


async def touch(conn: Conn, token_hash: bytes, at: float) -> None:
    await conn.execute(update(_S).where(col(_S.token_hash) == token_hash).values(last_seen_at=at))


async def remove(conn: Conn, token_hash: bytes) -> None:
    await conn.execute(delete(_S).where(col(_S.token_hash) == token_hash))


async def remove_for_key(conn: Conn, key_id: str) -> int:
    result = await conn.execute(delete(_S).where(col(_S.key_id) == key_id))
    return int(result.rowcount or 0)


def _stale(now: float, idle_before: float) -> Any:
    return or_(col(_S.expires_at) <= now, col(_S.last_seen_at) < idle_before)


async def any_stale(conn: Conn, *, now: float, idle_before: float) -> bool:
    # Sessions are people signed in to the pages: a short table, read whole.
    return await any_row(conn, col(_S.expires_at), _stale(now, idle_before))


async def remove_stale(conn: Conn, *, now: float, idle_before: float) -> int:
    """Delete sessions past their absolute end or idle since before *idle_before*."""
    result = await conn.execute(delete(_S).where(_stale(now, idle_before)))
    return int(result.rowcount or 0)
