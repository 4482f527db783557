"""Queries on received codes: stored sealed, handed out once, destroyed when stale.

Handing out is one ``DELETE ... RETURNING`` of the newest eligible row, then
the deletion of every older code of the same credential, in one transaction.
On PostgreSQL the row is chosen ``FOR UPDATE SKIP LOCKED``, so concurrent
takers (on any replica) never get the same row; "older" follows the total
order ``(received_at, id)``, and the older rows are locked newest first, so
two takers never wait on each other in a cycle.  On SQLite the write lock
already serialises takers.

On PostgreSQL both deletions, the credential's wrapped data key and the
audit chain's head are one statement (:func:`take_code_in_one`): an agent
woken for a code has it after four round trips (``BEGIN``, this, the
``code.read`` event, ``COMMIT``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, bindparam, delete, func, insert, or_, select, true
from sqlalchemy.orm import aliased
from sqlmodel import col

from . import audit as audit_rows
from . import signals
from .db import Conn, any_row, is_postgres
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
_INSERT_AND_WAKE = signals.notify_returned(
    "INSERT INTO received_codes (id, tenant_id, credential_id, source, kind, link_kind, code, "
    "sender, received_at, expires_at) VALUES (:id, :tenant_id, :credential_id, :source, :kind, "
    ":link_kind, :code, :sender, :received_at, :expires_at) RETURNING credential_id"
)


async def insert_codes(conn: Conn, rows: Sequence[CodeRow], *, wake: bool = False) -> None:
    """Store *rows*; with *wake*, their credentials' waiters on every replica are woken.

    On PostgreSQL a lone row's wake-up (``NOTIFY`` at commit, see
    ``signals``) is part of its insert: one round trip, not two, before the
    commit.  (A batch keeps one fixed statement for any number of rows, and
    its wake-ups cost one round trip for all of them.)
    """
    if not rows:
        return
    params = [row.params() for row in rows]
    if wake and len(params) == 1 and is_postgres(conn):
        await conn.execute(_INSERT_AND_WAKE, params[0])
        return
    await conn.execute(_INSERT, params)
    if wake:
        await signals.notify(conn, (row.credential_id for row in rows))


def _eligible(tenant_id: Any, cred_id: Any, *, now: Any, since: Any, source: Any,
              kind: Any) -> Any:  # fmt: skip
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


_TAKEN = (
    col(_RC.id),
    col(_RC.source),
    col(_RC.code),
    col(_RC.sender),
    col(_RC.received_at),
    col(_RC.link_kind),
)


def _newest(tenant_id: Any, cred_id: Any, *, now: Any, since: Any, source: Any, kind: Any,
            lock: bool) -> Any:  # fmt: skip
    chosen = (
        _eligible(tenant_id, cred_id, now=now, since=since, source=source, kind=kind)
        .order_by(col(_RC.received_at).desc(), col(_RC.id).desc())
        .limit(1)
    )
    if lock:
        chosen = chosen.with_for_update(skip_locked=True)
    return delete(_RC).where(col(_RC.id) == chosen.scalar_subquery()).returning(*_TAKEN)


def _older(tenant_id: Any, cred_id: Any, kind: Any, received_at: Any, row_id: Any, *,
           lock: bool) -> Any:  # fmt: skip
    """Delete the credential's codes (or links) before ``(received_at, row_id)``.

    With *lock* (PostgreSQL) they are locked newest first before they go:
    a taker then waits only for takers of older codes, never in a cycle.
    (A plain ``DELETE`` locks rows in whatever order it finds them: two
    takers each holding a few of the other's older codes deadlock.)
    """
    if not lock:
        return delete(_RC).where(*_before(_RC, tenant_id, cred_id, kind, received_at, row_id))
    older = aliased(_RC, name="older_codes")  # not the DELETE's own table
    in_order = (
        select(col(older.id))
        .where(*_before(older, tenant_id, cred_id, kind, received_at, row_id))
        .order_by(col(older.received_at).desc(), col(older.id).desc())
        .with_for_update(of=older)
    )
    return delete(_RC).where(col(_RC.id).in_(in_order.scalar_subquery()))


def _before(table: Any, tenant_id: Any, cred_id: Any, kind: Any, received_at: Any,
            row_id: Any) -> tuple[Any, ...]:  # fmt: skip
    return (
        col(table.tenant_id) == tenant_id,
        col(table.credential_id) == cred_id,
        col(table.kind) == kind,
        or_(
            col(table.received_at) < received_at,
            and_(col(table.received_at) == received_at, col(table.id) < row_id),
        ),
    )


def _take_in_one(*, since: bool, source: bool) -> Any:
    """The statement :func:`take_code_in_one` runs, built once (its values are bound).

    Building it costs more than running it, so each shape (with or without
    *since*, with or without *source*) is built at import.
    """
    tenant_id: Any = bindparam("tenant_id")
    cred_id: Any = bindparam("cred_id")
    kind: Any = bindparam("kind")
    taken = _newest(
        tenant_id,
        cred_id,
        now=bindparam("now"),
        since=bindparam("since") if since else None,
        source=bindparam("source") if source else None,
        kind=kind,
        lock=True,
    ).cte("taken")
    older = (
        _older(tenant_id, cred_id, kind, taken.c.received_at, taken.c.id, lock=True)
        .returning(col(_RC.id))
        .cte("older")
    )
    answered = and_(taken.c.source == "user", taken.c.id.like(bindparam("answer"), escape="/"))
    # The head is locked only once every older code is deleted: deleting one may
    # wait for another taker, which must not be waiting for this head meanwhile.
    # (PostgreSQL runs a CTE nobody reads after the statement's own work; the
    # count makes the older codes' deletion a step that comes before the head.)
    older_gone = select(func.count()).select_from(older).scalar_subquery() >= 0
    head = audit_rows.head_cte(
        bindparam("head_tenant", type_=String),
        select(taken.c.id).where(~answered, older_gone).subquery(),
    )
    return (
        select(
            *taken.c,
            col(Credential.data_key),
            head.c.seq.label("head_seq"),
            head.c.hash.label("head_hash"),
        )
        .select_from(taken)
        .join(
            Credential,
            and_(col(Credential.tenant_id) == tenant_id, col(Credential.id) == cred_id),
        )
        .outerjoin(head, true())
    )


_TAKE_IN_ONE = {
    (since, source): _take_in_one(since=since, source=source)
    for since in (False, True)
    for source in (False, True)
}


async def take_code_in_one(
    conn: Conn,
    tenant_id: str,
    cred_id: str,
    *,
    now: float,
    since: float | None,
    source: str | None,
    kind: str = CODE,
    answer_prefix: str,
) -> Any:
    """PostgreSQL: :func:`take_code`, the credential's ``data_key`` and the audit head, at once.

    The row has the taken code's columns, ``data_key``, and the tenant's
    audit head as ``head_seq`` and ``head_hash`` (taken, and locked, in this
    transaction: link the ``code.read`` event with ``audit.link``).  A
    person's answer to an interaction (source ``user``, an id starting with
    *answer_prefix*) leaves the head alone (both None): its interaction is
    settled first, and the event appended after, in the order every other
    writer takes those locks.
    """
    escaped = answer_prefix.replace("/", "//").replace("%", "/%").replace("_", "/_")
    params = {
        "tenant_id": tenant_id,
        "head_tenant": tenant_id,
        "cred_id": cred_id,
        "kind": kind,
        "now": now,
        "since": since,
        "source": source,
        "answer": escaped + "%",
    }
    stmt = _TAKE_IN_ONE[since is not None, source is not None]
    return (await conn.execute(stmt, params)).first()


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
    newest = _newest(tenant_id, cred_id, now=now, since=since, source=source, kind=kind, lock=lock)
    row = (await conn.execute(newest)).first()
    if row is not None:
        older = _older(tenant_id, cred_id, kind, row.received_at, row.id, lock=lock)
        await conn.execute(older)
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
