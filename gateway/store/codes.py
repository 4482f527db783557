"""Queries on received codes: stored sealed, handed out once, destroyed when stale.

Handing out is one ``DELETE ... RETURNING`` of the newest eligible row, then
the deletion of every older code of the same credential, in one transaction.
On PostgreSQL the row is chosen ``FOR UPDATE SKIP LOCKED``, so concurrent
takers (on any replica) never get the same row; "older" follows the total
order ``(received_at, id)`` so two takers never wait on each other in a cycle.
On SQLite the write lock already serialises takers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select
from sqlmodel import col

from .db import Conn, any_row
from .models import Credential, ReceivedCode

_RC = ReceivedCode
#: What a received row holds: a one-time code, or a sign-in or confirmation link.
CODE, LINK = "code", "link"


@dataclass(slots=True)  # not frozen: see ForwardCopyRow in .inbound
class CodeRow:
    """A received code to store: sealed, for one credential, until ``expires_at``."""

    id: str
    tenant_id: str
    credential_id: str
    source: str  # "email", "sms" or "user"
    code: bytes  # sealed (a code, or a link's URL)
    sender: str | None
    received_at: float
    expires_at: float
    kind: str = CODE
    link_kind: str | None = None

    def params(self) -> dict[str, Any]:
        """The row's columns, as an insert takes them."""
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "credential_id": self.credential_id,
            "source": self.source,
            "code": self.code,
            "sender": self.sender,
            "received_at": self.received_at,
            "expires_at": self.expires_at,
            "kind": self.kind,
            "link_kind": self.link_kind,
        }


_INSERT = insert(_RC)


async def insert_codes(conn: Conn, rows: Sequence[CodeRow]) -> None:
    if rows:
        await conn.execute(_INSERT, [row.params() for row in rows])


def _eligible(tenant_id: str, cred_id: str, *, now: float, since: float | None,
              source: str | None, kind: str) -> Any:  # fmt: skip
    stmt = select(col(_RC.id)).where(
        col(_RC.tenant_id) == tenant_id,
        col(_RC.credential_id) == cred_id,
        col(_RC.kind) == kind,
        col(_RC.expires_at) > now,
    )
    if since is not None:
        stmt = stmt.where(col(_RC.received_at) >= since)
    if source is not None:
        stmt = stmt.where(col(_RC.source) == source)
    return stmt


async def has_code(
    conn: Conn, tenant_id: str, cred_id: str, *, now: float, since: float | None,
    source: str | None, kind: str = CODE,
) -> bool:  # fmt: skip
    """Whether a code (or link) is waiting (a cheap check before taking the write lock)."""
    stmt = _eligible(tenant_id, cred_id, now=now, since=since, source=source, kind=kind).limit(1)
    return (await conn.execute(stmt)).first() is not None


async def take_code(
    conn: Conn,
    tenant_id: str,
    cred_id: str,
    *,
    now: float,
    since: float | None,
    source: str | None,
    lock: bool,
    kind: str = CODE,
) -> Any:
    """Delete and return the newest eligible code (or link), and drop every older one."""
    chosen = (
        _eligible(tenant_id, cred_id, now=now, since=since, source=source, kind=kind)
        .order_by(col(_RC.received_at).desc(), col(_RC.id).desc())
        .limit(1)
    )
    if lock:
        chosen = chosen.with_for_update(skip_locked=True)
    row = (
        await conn.execute(
            delete(_RC)
            .where(col(_RC.id) == chosen.scalar_subquery())
            .returning(
                col(_RC.id),
                col(_RC.source),
                col(_RC.code),
                col(_RC.sender),
                col(_RC.received_at),
                col(_RC.link_kind),
            )
        )
    ).first()
    if row is None:
        return None
    await conn.execute(
        delete(_RC).where(
            col(_RC.tenant_id) == tenant_id,
            col(_RC.credential_id) == cred_id,
            col(_RC.kind) == kind,
            or_(
                col(_RC.received_at) < row.received_at,
                and_(col(_RC.received_at) == row.received_at, col(_RC.id) < row.id),
            ),
        )
    )
    return row


async def any_expired(conn: Conn, now: float) -> bool:
    return await any_row(conn, col(_RC.expires_at), col(_RC.expires_at) <= now)


async def delete_expired(conn: Conn, now: float) -> int:
    result = await conn.execute(delete(_RC).where(col(_RC.expires_at) <= now))
    return int(result.rowcount or 0)


async def count_waiting(conn: Conn) -> int:
    return int((await conn.execute(select(func.count()).select_from(_RC))).scalar_one())


# -- routing inbound messages to credentials ------------------------------------

#: What routing a message to a credential needs (see ``services.inbound.Route``).
ROUTE_COLUMNS = (
    col(Credential.id),
    col(Credential.tenant_id),
    col(Credential.data_key),
    col(Credential.extraction_pattern),
    col(Credential.allowed_senders),
    col(Credential.report_unsolicited),
)
_BY_INBOX = select(*ROUTE_COLUMNS).where(col(Credential.inbox) == bindparam("inbox"))
_BY_PHONE = select(*ROUTE_COLUMNS).where(col(Credential.phone_number) == bindparam("phone"))


async def route_by_inbox(conn: Conn, inbox: str) -> Any:
    return (await conn.execute(_BY_INBOX, {"inbox": inbox})).first()


async def route_by_phone(conn: Conn, phone: str) -> Any:
    return (await conn.execute(_BY_PHONE, {"phone": phone})).first()
