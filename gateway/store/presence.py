"""Queries on who is signing in to a credential: long polls in ``code_waits``, open logins.

A code or link arriving for a credential nobody signs in to is reported as
``code.unsolicited``; :func:`attended` is that check, run in the transaction
that stores the message.
"""

from __future__ import annotations

from sqlalchemy import bindparam, delete, insert, select
from sqlmodel import col

from .db import Conn
from .models import CodeWait, Login

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


async def end_wait(conn: Conn, wait_id: str) -> None:
    await conn.execute(delete(CodeWait).where(col(CodeWait.id) == wait_id))


async def forget_waits(conn: Conn, now: float) -> int:
    """Remove waits past their end (their replica stopped without removing them)."""
    result = await conn.execute(delete(CodeWait).where(col(CodeWait.until) <= now))
    return int(result.rowcount or 0)


async def attended(conn: Conn, credential_id: str, now: float) -> bool:
    """Whether an agent waits on the credential or has a login open on it."""
    params = {"credential_id": credential_id, "now": now}
    if (await conn.execute(_WAITING, params)).first() is not None:
        return True
    return (await conn.execute(_OPEN_LOGIN, params)).first() is not None
