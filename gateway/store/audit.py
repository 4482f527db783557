"""Queries on the audit trail: one hash chain per tenant.

An append reads and moves the chain's head in the caller's transaction.  The
head is taken with ``INSERT .. ON CONFLICT DO UPDATE .. RETURNING``, which
creates a tenant's head on its first event and, on PostgreSQL, locks the row
until the transaction ends: two replicas appending to one chain take turns,
and the chain never forks.  (SQLite has one writer at a time anyway.)
Several tenants' events in one transaction take their heads in tenant order,
so two such transactions never wait on each other in a cycle.

A caller may take the head inside a statement of its own (:func:`head_cte`,
as handing out a code does) and then :func:`link` its events after it.  On
PostgreSQL the events' insert and the head's move are one statement.

``hash`` is the hex SHA-256 of ``prev_hash + "\\n" +`` the canonical JSON of
the event as the API returns it, every field but ``hash``.  Nothing here
updates or deletes an event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, literal, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.expression import CTE
from sqlmodel import col

from ..timestamps import iso
from .db import Conn, is_postgres
from .models import AuditEvent, AuditHead

#: The ``prev_hash`` of a chain's first event.
GENESIS = "0" * 64

_TAKE_HEAD = text(
    "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (:tenant_id, 0, :genesis) "
    "ON CONFLICT (tenant_id) DO UPDATE SET seq = audit_heads.seq "
    "RETURNING seq, hash"
)
_MOVE_HEAD = text("UPDATE audit_heads SET seq = :seq, hash = :hash WHERE tenant_id = :tenant_id")
_INSERT = insert(AuditEvent)
_INSERT_AND_MOVE = text(
    "WITH moved AS (UPDATE audit_heads SET seq = :head_seq, hash = :head_hash "
    "WHERE tenant_id = :tenant_id) "
    "INSERT INTO audit_events (tenant_id, seq, at, at_ts, actor, action, credential_id, "
    "object_id, outcome, prev_hash, hash) VALUES (:tenant_id, :seq, :at, :at_ts, :actor, "
    ":action, :credential_id, :object_id, :outcome, :prev_hash, :hash)"
)


def canonical(value: Any) -> bytes:
    """The contract's canonical JSON: sorted keys, no spaces, UTF-8 unescaped."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, event: dict[str, Any]) -> str:
    """The ``hash`` of *event* (every field but ``hash``) after *prev_hash*."""
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(event)).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """An event on its way into a chain: everything but its place in it."""

    tenant_id: str
    at: float
    actor: dict[str, Any]
    action: str
    credential_id: str | None
    object_id: str | None
    outcome: str


async def append(conn: Conn, entries: Sequence[Entry]) -> None:
    """Link *entries* onto their tenants' chains, in this transaction."""
    by_tenant: dict[str, list[Entry]] = {}
    for entry in entries:
        by_tenant.setdefault(entry.tenant_id, []).append(entry)
    for tenant_id in sorted(by_tenant):
        head = (await conn.execute(_TAKE_HEAD, {"tenant_id": tenant_id, "genesis": GENESIS})).one()
        await link(conn, tenant_id, (int(head[0]), str(head[1])), by_tenant[tenant_id])


def head_cte(tenant_id: Any, when: Any) -> CTE:
    """PostgreSQL: take *tenant_id*'s head (as :func:`append` does) only if *when* has a row.

    *tenant_id* is an expression of the statement (a bound parameter, say).

    *when* is a selectable (a ``DELETE .. RETURNING`` CTE, say) of the
    statement the returned CTE joins; its columns are ``seq`` and ``hash``.
    """
    return (
        pg_insert(AuditHead)
        .from_select(
            ["tenant_id", "seq", "hash"],
            select(tenant_id, literal(0), literal(GENESIS)).select_from(when),
        )
        .on_conflict_do_update(index_elements=["tenant_id"], set_={"seq": AuditHead.seq})
        .returning(col(AuditHead.seq), col(AuditHead.hash))
        .cte("head")
    )


async def link(conn: Conn, tenant_id: str, head: tuple[int, str], entries: Sequence[Entry]) -> None:
    """Insert *entries* after the head this transaction took, and move the head past them."""
    seq, prev = head
    rows: list[dict[str, Any]] = []
    for entry in entries:
        seq += 1
        event = {
            "seq": seq,
            "at": iso(entry.at),
            "actor": entry.actor,
            "action": entry.action,
            "credential_id": entry.credential_id,
            "object_id": entry.object_id,
            "outcome": entry.outcome,
            "prev_hash": prev,
        }
        prev = chain_hash(prev, event)
        rows.append(
            event
            | {
                "tenant_id": tenant_id,
                "actor": canonical(entry.actor).decode(),
                "at_ts": entry.at,
                "hash": prev,
            }
        )
    if len(rows) == 1 and is_postgres(conn):
        # One statement, one round trip: the head moves in a CTE of the insert.
        # (Several events keep a fixed statement for any number of them.)
        await conn.execute(_INSERT_AND_MOVE, rows[0] | {"head_seq": seq, "head_hash": prev})
        return
    await conn.execute(_INSERT, rows)
    await conn.execute(_MOVE_HEAD, {"tenant_id": tenant_id, "seq": seq, "hash": prev})


def as_event(row: Any) -> dict[str, Any]:
    """A stored event as the API returns it."""
    return {
        "seq": int(row.seq),
        "at": row.at,
        "actor": json.loads(row.actor),
        "action": row.action,
        "credential_id": row.credential_id,
        "object_id": row.object_id,
        "outcome": row.outcome,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


_COLUMNS = (
    col(AuditEvent.tenant_id),
    col(AuditEvent.seq),
    col(AuditEvent.at),
    col(AuditEvent.actor),
    col(AuditEvent.action),
    col(AuditEvent.credential_id),
    col(AuditEvent.object_id),
    col(AuditEvent.outcome),
    col(AuditEvent.prev_hash),
    col(AuditEvent.hash),
)


async def page(
    conn: Conn,
    tenant_id: str,
    *,
    after: int,
    limit: int,
    credential_id: str | None = None,
    action: str | None = None,
) -> list[Any]:
    """Up to *limit* events after *after*, oldest first, optionally filtered."""
    query = select(*_COLUMNS).where(
        col(AuditEvent.tenant_id) == tenant_id, col(AuditEvent.seq) > after
    )
    if credential_id is not None:
        query = query.where(col(AuditEvent.credential_id) == credential_id)
    if action is not None:
        query = query.where(col(AuditEvent.action) == action)
    query = query.order_by(col(AuditEvent.seq)).limit(limit)
    return list((await conn.execute(query)).all())


async def latest(conn: Conn, tenant_id: str, *, credential_id: str | None, limit: int) -> list[Any]:
    """The newest *limit* events (of one credential), newest first."""
    query = select(*_COLUMNS).where(col(AuditEvent.tenant_id) == tenant_id)
    if credential_id is not None:
        query = query.where(col(AuditEvent.credential_id) == credential_id)
    query = query.order_by(col(AuditEvent.seq).desc()).limit(limit)
    return list((await conn.execute(query)).all())


async def counts_since(
    conn: Conn,
    tenant_id: str,
    *,
    since: float,
    actions: Iterable[str],
    credential_id: str | None,
) -> list[tuple[float, str]]:
    """``(at, action)`` of the events with one of *actions* since *since*."""
    query = select(col(AuditEvent.at_ts), col(AuditEvent.action)).where(
        col(AuditEvent.tenant_id) == tenant_id,
        col(AuditEvent.at_ts) >= since,
        col(AuditEvent.action).in_(list(actions)),
    )
    if credential_id is not None:
        query = query.where(col(AuditEvent.credential_id) == credential_id)
    return [(float(r[0]), str(r[1])) for r in (await conn.execute(query)).all()]


async def tenants(conn: Conn) -> list[str]:
    """Every tenant with a chain."""
    rows = await conn.execute(select(col(AuditHead.tenant_id)).order_by(col(AuditHead.tenant_id)))
    return [r[0] for r in rows.all()]


async def head(conn: Conn, tenant_id: str) -> tuple[int, str] | None:
    row = (
        await conn.execute(
            select(col(AuditHead.seq), col(AuditHead.hash)).where(
                col(AuditHead.tenant_id) == bindparam("t")
            ),
            {"t": tenant_id},
        )
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))
