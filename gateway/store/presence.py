"""Queries on who is signing in to a credential: long polls in ``code_waits``, open logins.

A code or link arriving for a credential nobody signs in to is reported as
``code.unsolicited``: :func:`report_unattended` queues it, in the transaction
that stores the message, for each subscribed endpoint, in one statement whose
condition is that no agent waits and no login is open (so a message costs no
extra query when no endpoint subscribes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, exists, insert, select, update
from sqlmodel import col

from .db import Conn, any_row
from .models import CodeWait, Login
from .webhooks import fan_out_when

_WAITING = (
    select(col(CodeWait.id))
    .where(
        col(CodeWait.credential_id) == bindparam("credential_id"),
        col(CodeWait.until) > bindparam("now"),
    )
    .limit(1)
)
_OPEN_LOGIN = (
    select(col(Login.id))
    .where(col(Login.credential_id) == bindparam("credential_id"), col(Login.status) == "open")
    .limit(1)
)


async def add_wait(conn: Conn, wait_id: str, credential_id: str, until: float) -> None:
    await conn.execute(
        insert(CodeWait).values(id=wait_id, credential_id=credential_id, until=until)
    )


async def move_wait(conn: Conn, wait_id: str, until: float) -> None:
    await conn.execute(update(CodeWait).where(col(CodeWait.id) == wait_id).values(until=until))


async def end_wait(conn: Conn, wait_id: str) -> None:
    await conn.execute(delete(CodeWait).where(col(CodeWait.id) == wait_id))


async def any_wait_over(conn: Conn, now: float) -> bool:
    """Whether a wait is past its end."""
    return await any_row(conn, col(CodeWait.until), col(CodeWait.until) <= now)


async def forget_waits(conn: Conn, now: float) -> int:
    """Remove waits past their end (their replica stopped without removing them)."""
    result = await conn.execute(delete(CodeWait).where(col(CodeWait.until) <= now))
    return int(result.rowcount or 0)


_UNATTENDED = fan_out_when(
    ~exists().where(
        col(CodeWait.credential_id) == bindparam("credential_id"),
        col(CodeWait.until) > bindparam("now"),
    ),
    ~exists().where(
        col(Login.credential_id) == bindparam("credential_id"), col(Login.status) == "open"
    ),
)


async def report_unattended(conn: Conn, reports: Sequence[dict[str, Any]]) -> None:
    """Queue each ``code.unsolicited`` (``fan_out_params`` and ``credential_id``) if unattended."""
    if reports:
        await conn.execute(_UNATTENDED, list(reports))
