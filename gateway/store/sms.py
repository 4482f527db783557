"""Queries on Android SMS devices (SMS Gateway for Android) mapped to credentials."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlmodel import col

from .db import Conn
from .models import SmsDevice

_PUBLIC = (
    col(SmsDevice.id),
    col(SmsDevice.credential_id),
    col(SmsDevice.device_id),
    col(SmsDevice.sim_number),
    col(SmsDevice.created_at),
)


async def insert_device(conn: Conn, **values: Any) -> None:
    await conn.execute(insert(SmsDevice).values(**values))


async def list_devices(conn: Conn, tenant_id: str, cred_id: str) -> Sequence[Any]:
    stmt = (
        select(*_PUBLIC)
        .where(col(SmsDevice.tenant_id) == tenant_id, col(SmsDevice.credential_id) == cred_id)
        .order_by(col(SmsDevice.created_at), col(SmsDevice.id))
    )
    return (await conn.execute(stmt)).all()


async def count_devices(conn: Conn, cred_id: str) -> int:
    stmt = select(func.count()).where(col(SmsDevice.credential_id) == cred_id)
    return int((await conn.execute(stmt)).scalar_one())


async def mapping_taken(conn: Conn, device_id: str, sim_number: int | None) -> bool:
    stmt = select(col(SmsDevice.id)).where(col(SmsDevice.device_id) == device_id)
    stmt = stmt.where(
        col(SmsDevice.sim_number).is_(None)
        if sim_number is None
        else col(SmsDevice.sim_number) == sim_number
    )
    return (await conn.execute(stmt)).first() is not None


async def delete_device(conn: Conn, tenant_id: str, cred_id: str, device_row: str) -> bool:
    result = await conn.execute(
        delete(SmsDevice).where(
            col(SmsDevice.id) == device_row,
            col(SmsDevice.tenant_id) == tenant_id,
            col(SmsDevice.credential_id) == cred_id,
        )
    )
    return bool(result.rowcount)
