"""Queries on Skyvern endpoints: one per credential, found by its token's keyed hash."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlmodel import col

from .db import Conn
from .models import Credential, SkyvernEndpoint

_S = SkyvernEndpoint


async def replace(conn: Conn, row: dict[str, Any]) -> None:
    await conn.execute(delete(_S).where(col(_S.credential_id) == row["credential_id"]))
    await conn.execute(insert(_S), [row])


async def remove(conn: Conn, tenant_id: str, cred_id: str) -> bool:
    stmt = delete(_S).where(col(_S.tenant_id) == tenant_id, col(_S.credential_id) == cred_id)
    return bool((await conn.execute(stmt)).rowcount)


async def by_token(conn: Conn, token_hash: bytes) -> Any:
    """The endpoint with the credential's wrapped data key, or None."""
    stmt = (
        select(
            col(_S.credential_id),
            col(_S.tenant_id),
            col(_S.api_key),
            col(_S.run),
            col(_S.login_id),
            col(Credential.data_key),
        )
        .join(Credential, col(Credential.id) == col(_S.credential_id))
        .where(col(_S.token_hash) == token_hash)
    )
    return (await conn.execute(stmt)).first()


async def set_run(conn: Conn, cred_id: str, run: str, login_id: str) -> None:
    stmt = update(_S).where(col(_S.credential_id) == cred_id).values(run=run, login_id=login_id)
    await conn.execute(stmt)
