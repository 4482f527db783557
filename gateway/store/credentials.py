"""Queries on credentials and their authenticators.

Every query that reads or changes a tenant's object takes the tenant id and
puts it in the WHERE clause: another tenant's id simply matches nothing.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import bindparam, case, delete, insert, or_, select, update
from sqlmodel import col

from .db import Conn
from .models import Authenticator, Credential, ReceivedCode

_PUBLIC = (
    col(Credential.id),
    col(Credential.name),
    col(Credential.username),
    col(Credential.inbox),
    col(Credential.phone_number),
    (col(Credential.password).is_not(None)).label("has_password"),
    col(Credential.created_at),
    col(Credential.updated_at),
    col(Credential.report_unsolicited),
    col(Authenticator.kind),
    col(Authenticator.digits),
    col(Authenticator.period),
    col(Authenticator.algorithm),
)


def _public_select() -> Any:
    return select(*_PUBLIC).outerjoin(
        Authenticator, col(Authenticator.credential_id) == col(Credential.id)
    )


async def insert_credential(conn: Conn, **values: Any) -> None:
    await conn.execute(insert(Credential).values(**values))


async def get_public(conn: Conn, tenant_id: str, cred_id: str) -> Any:
    stmt = _public_select().where(
        col(Credential.tenant_id) == tenant_id, col(Credential.id) == cred_id
    )
    return (await conn.execute(stmt)).first()


async def list_public(
    conn: Conn,
    tenant_id: str,
    *,
    limit: int,
    after: str | None,
    only: frozenset[str] | None = None,
) -> Sequence[Any]:
    stmt = _public_select().where(col(Credential.tenant_id) == tenant_id)
    if only is not None:
        stmt = stmt.where(col(Credential.id).in_(sorted(only)))
    if after is not None:
        stmt = stmt.where(col(Credential.id) > after)
    stmt = stmt.order_by(col(Credential.id)).limit(limit)
    return (await conn.execute(stmt)).all()


async def get_sealed(conn: Conn, tenant_id: str, cred_id: str) -> tuple[bytes, bytes | None] | None:
    """The wrapped data key and sealed password of one credential."""
    row = (
        await conn.execute(
            select(col(Credential.data_key), col(Credential.password)).where(
                col(Credential.tenant_id) == tenant_id, col(Credential.id) == cred_id
            )
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def update_credential(conn: Conn, tenant_id: str, cred_id: str, **values: Any) -> bool:
    result = await conn.execute(
        update(Credential)
        .where(col(Credential.tenant_id) == tenant_id, col(Credential.id) == cred_id)
        .values(**values)
    )
    return bool(result.rowcount)


async def delete_credential(conn: Conn, tenant_id: str, cred_id: str) -> bool:
    await conn.execute(
        delete(ReceivedCode).where(
            col(ReceivedCode.tenant_id) == tenant_id, col(ReceivedCode.credential_id) == cred_id
        )
    )
    await conn.execute(
        delete(Authenticator).where(
            col(Authenticator.tenant_id) == tenant_id, col(Authenticator.credential_id) == cred_id
        )
    )
    result = await conn.execute(
        delete(Credential).where(
            col(Credential.tenant_id) == tenant_id, col(Credential.id) == cred_id
        )
    )
    return bool(result.rowcount)


def encode_senders(domains: Sequence[str] | None) -> str | None:
    """The allowed-senders column: a JSON list of domains, or null for any sender."""
    return None if domains is None else json.dumps(list(domains))


def decode_senders(raw: str | None) -> tuple[str, ...] | None:
    return None if raw is None else tuple(json.loads(raw))


async def get_extraction(conn: Conn, tenant_id: str, cred_id: str) -> Any:
    return (
        await conn.execute(
            select(col(Credential.extraction_pattern), col(Credential.allowed_senders)).where(
                col(Credential.tenant_id) == tenant_id, col(Credential.id) == cred_id
            )
        )
    ).first()


async def get_phone(conn: Conn, tenant_id: str, cred_id: str) -> Any:
    """``(phone_number, phone_sid)`` of one credential, or None when there is no such one."""
    return (
        await conn.execute(
            select(col(Credential.phone_number), col(Credential.phone_sid)).where(
                col(Credential.tenant_id) == tenant_id, col(Credential.id) == cred_id
            )
        )
    ).first()


def sid_if_same_number(phone: str | None) -> Any:
    """The ``phone_sid`` to keep when a credential's number is set to *phone*.

    A provider's id belongs to the number it was bought as: it stays while the
    number does and is dropped when the number changes.  (In an UPDATE, SET
    expressions see the row's old values, on SQLite and PostgreSQL alike.)
    """
    if phone is None:
        return None
    return case((col(Credential.phone_number) == phone, col(Credential.phone_sid)), else_=None)


async def phone_owner(conn: Conn, phone: str) -> str | None:
    return (
        await conn.execute(select(col(Credential.id)).where(col(Credential.phone_number) == phone))
    ).scalar_one_or_none()


async def upsert_authenticator(conn: Conn, **values: Any) -> None:
    await conn.execute(
        delete(Authenticator).where(
            col(Authenticator.credential_id) == values["credential_id"],
            col(Authenticator.tenant_id) == values["tenant_id"],
        )
    )
    await conn.execute(insert(Authenticator).values(**values))


async def delete_authenticator(conn: Conn, tenant_id: str, cred_id: str) -> bool:
    result = await conn.execute(
        delete(Authenticator).where(
            col(Authenticator.tenant_id) == tenant_id, col(Authenticator.credential_id) == cred_id
        )
    )
    return bool(result.rowcount)


_AUTH_COLUMNS = (
    col(Credential.data_key),
    col(Authenticator.kind),
    col(Authenticator.digits),
    col(Authenticator.period),
    col(Authenticator.algorithm),
    col(Authenticator.counter),
    col(Authenticator.secret),
)


# Built once: this runs on every code request.
_GET_AUTHENTICATOR = (
    select(*_AUTH_COLUMNS)
    .outerjoin(Authenticator, col(Authenticator.credential_id) == col(Credential.id))
    .where(
        col(Credential.tenant_id) == bindparam("tenant_id"),
        col(Credential.id) == bindparam("cred_id"),
    )
)


async def get_authenticator(conn: Conn, tenant_id: str, cred_id: str) -> Any:
    """The credential's data key and authenticator columns, or None for an unknown credential.

    A credential without an authenticator gives a row whose ``kind`` is None.
    """
    params = {"tenant_id": tenant_id, "cred_id": cred_id}
    return (await conn.execute(_GET_AUTHENTICATOR, params)).first()


#: The largest HOTP counter the signed 64-bit column holds.
MAX_HOTP_COUNTER = 2**63 - 1
#: The stored counter once the value MAX_HOTP_COUNTER has been used: adding one
#: would overflow the column (SQLite would turn it into a float, PostgreSQL fail).
HOTP_EXHAUSTED = -1


async def take_hotp_counter(conn: Conn, tenant_id: str, cred_id: str) -> int | None:
    """Move the HOTP counter on by one and return the value to use, atomically.

    None when the credential has no HOTP authenticator or its counter has
    been used up to MAX_HOTP_COUNTER (see :func:`hotp_exhausted`).
    """
    counter = col(Authenticator.counter)
    result = await conn.execute(
        update(Authenticator)
        .where(
            col(Authenticator.tenant_id) == tenant_id,
            col(Authenticator.credential_id) == cred_id,
            col(Authenticator.kind) == "hotp",
            counter >= 0,
        )
        .values(counter=case((counter == MAX_HOTP_COUNTER, HOTP_EXHAUSTED), else_=counter + 1))
        .returning(counter)
    )
    new = result.scalar_one_or_none()
    if new is None:
        return None
    return MAX_HOTP_COUNTER if new == HOTP_EXHAUSTED else int(new) - 1


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search_public(
    conn: Conn,
    tenant_id: str,
    *,
    text: str | None,
    offset: int,
    limit: int,
    only: Collection[str] | None = None,
) -> Sequence[Any]:
    """A page of the tenant's credentials by name, whose name, username or inbox holds *text*.

    *only* limits the result to those credentials (a key limited to some).
    """
    stmt = _public_select().where(col(Credential.tenant_id) == tenant_id)
    if text:
        pattern = f"%{_escape_like(text.lower())}%"
        stmt = stmt.where(
            or_(
                col(Credential.name).ilike(pattern, escape="\\"),
                col(Credential.username).ilike(pattern, escape="\\"),
                col(Credential.inbox).ilike(pattern, escape="\\"),
            )
        )
    if only is not None:
        stmt = stmt.where(col(Credential.id).in_(list(only)))
    stmt = stmt.order_by(col(Credential.name), col(Credential.id)).offset(offset).limit(limit)
    return (await conn.execute(stmt)).all()


async def names(conn: Conn, tenant_id: str, cred_ids: Sequence[str]) -> dict[str, str]:
    """The names of the tenant's credentials among *cred_ids*."""
    if not cred_ids:
        return {}
    stmt = select(col(Credential.id), col(Credential.name)).where(
        col(Credential.tenant_id) == tenant_id, col(Credential.id).in_(list(cred_ids))
    )
    return {row[0]: row[1] for row in (await conn.execute(stmt)).all()}
