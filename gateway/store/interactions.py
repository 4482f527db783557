"""Queries on interactions: a person's answer to an agent's request for a code.

Every change of state is one conditional ``UPDATE ... WHERE status = ...``,
so of two concurrent callers (on any replica) exactly one wins it: a code is
stored once, handed out once, and an interaction expires (and its
``interaction.expired`` event is queued) once.

A submitted code is also a received code (source ``user``) whose row in
``received_codes`` has the interaction's id, so ``GET /v1/credentials/{id}/code``
can hand it out too.  The invariant: such a row exists only while its
interaction is ``submitted``.  Whichever way a code is handed out, both rows
change in one transaction, and always in the same order (the received code
first, then the interaction), so two takers on PostgreSQL never wait on each
other in a cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlmodel import col

from .db import Conn, any_row
from .models import Credential, Interaction, ReceivedCode

_I = Interaction

PENDING = "pending"
SUBMITTED = "submitted"
DELIVERED = "delivered"
EXPIRED = "expired"
APPROVED = "approved"
DENIED = "denied"
#: The states in which an interaction can still run out of time.
OPEN = (PENDING, SUBMITTED)
#: The states of an interaction that is over and kept only for a while.
FINISHED = (DELIVERED, EXPIRED, APPROVED, DENIED)

_SHOWN = (
    col(_I.id),
    col(_I.tenant_id),
    col(_I.credential_id),
    col(_I.prompt),
    col(_I.status),
    col(_I.attempts),
    col(_I.created_at),
    col(_I.expires_at),
    col(_I.submitted_at),
    col(_I.kind),
)


async def credential(conn: Conn, tenant_id: str, cred_id: str) -> Any:
    """The name and wrapped data key of one of the tenant's credentials, or None."""
    stmt = select(col(Credential.name), col(Credential.data_key)).where(
        col(Credential.tenant_id) == tenant_id, col(Credential.id) == cred_id
    )
    return (await conn.execute(stmt)).first()


async def sealed_token(conn: Conn, interaction_id: str) -> Any:
    """The sealed submit token of an interaction, with what opens it; None if gone."""
    stmt = (
        select(
            col(_I.tenant_id),
            col(_I.credential_id),
            col(_I.submit_token),
            col(Credential.data_key),
        )
        .join(Credential, col(Credential.id) == col(_I.credential_id))
        .where(col(_I.id) == interaction_id)
    )
    return (await conn.execute(stmt)).first()


async def insert_interaction(conn: Conn, **values: Any) -> None:
    await conn.execute(insert(_I).values(**values))


async def get(conn: Conn, tenant_id: str, interaction_id: str) -> Any:
    stmt = select(*_SHOWN).where(col(_I.tenant_id) == tenant_id, col(_I.id) == interaction_id)
    return (await conn.execute(stmt)).first()


async def by_token(conn: Conn, token_hash: bytes) -> Any:
    """The interaction a submit token belongs to, with its credential's name and key."""
    stmt = (
        select(
            *_SHOWN,
            col(_I.token_hash),
            col(_I.match),
            col(Credential.name),
            col(Credential.data_key),
        )
        .join(Credential, col(Credential.id) == col(_I.credential_id))
        .where(col(_I.token_hash) == token_hash)
    )
    return (await conn.execute(stmt)).first()


async def for_submission(conn: Conn, tenant_id: str, interaction_id: str) -> Any:
    """The interaction with its credential's wrapped data key (to seal the code)."""
    stmt = (
        select(*_SHOWN, col(Credential.data_key))
        .join(Credential, col(Credential.id) == col(_I.credential_id))
        .where(col(_I.tenant_id) == tenant_id, col(_I.id) == interaction_id)
    )
    return (await conn.execute(stmt)).first()


def _accepting(interaction_id: str, now: float, max_attempts: int, kind: str = "code") -> Any:
    return (
        update(_I)
        .where(
            col(_I.id) == interaction_id,
            col(_I.kind) == kind,
            col(_I.status) == PENDING,
            col(_I.expires_at) > now,
            col(_I.attempts) < max_attempts,
        )
        .values(attempts=col(_I.attempts) + 1)
    )


async def count_attempt(conn: Conn, interaction_id: str, *, now: float, max_attempts: int) -> bool:
    """Count a refused answer; False when the interaction no longer takes answers."""
    result = await conn.execute(_accepting(interaction_id, now, max_attempts))
    return bool(result.rowcount)


async def submit(
    conn: Conn,
    interaction_id: str,
    *,
    sealed: bytes,
    now: float,
    keep_until: float,
    max_attempts: int,
) -> bool:
    """Store the sealed answer of a pending interaction; False when it takes none now.

    ``expires_at`` moves on to *keep_until*: from now on it is the time the
    code waits for its agent before it is destroyed.
    """
    stmt = _accepting(interaction_id, now, max_attempts).values(
        status=SUBMITTED, code=sealed, submitted_at=now, expires_at=keep_until
    )
    return bool((await conn.execute(stmt)).rowcount)


async def decide(
    conn: Conn, interaction_id: str, *, decision: str, now: float, max_attempts: int
) -> bool:
    """Record a pending approval's decision; False when it takes none now."""
    stmt = _accepting(interaction_id, now, max_attempts, kind="approval").values(
        status=decision, submitted_at=now
    )
    return bool((await conn.execute(stmt)).rowcount)


async def take(conn: Conn, tenant_id: str, interaction_id: str, *, now: float) -> Any:
    """Hand out a submitted code: drop its received-code twin, return the sealed code.

    None when it is not (or no longer) waiting: another taker got it first,
    or its time is up.  The sealed code is erased in the same transaction.
    """
    await conn.execute(delete(ReceivedCode).where(col(ReceivedCode.id) == interaction_id))
    row = (
        await conn.execute(
            update(_I)
            .where(
                col(_I.tenant_id) == tenant_id,
                col(_I.id) == interaction_id,
                col(_I.status) == SUBMITTED,
                col(_I.expires_at) > now,
            )
            .values(status=DELIVERED)
            .returning(col(_I.code), col(_I.credential_id), col(_I.submitted_at))
        )
    ).first()
    if row is None:
        return None
    await conn.execute(update(_I).where(col(_I.id) == interaction_id).values(code=None))
    return row


async def settle_taken(conn: Conn, tenant_id: str, interaction_id: str) -> bool:
    """Mark delivered the interaction whose received code was just handed out elsewhere.

    Called in the transaction that deleted that code; False if the
    interaction was not waiting (then the code must not be handed out).
    """
    result = await conn.execute(
        update(_I)
        .where(
            col(_I.tenant_id) == tenant_id,
            col(_I.id) == interaction_id,
            col(_I.status) == SUBMITTED,
        )
        .values(status=DELIVERED, code=None)
    )
    return bool(result.rowcount)


_EXPIRED_RETURNING = (
    col(_I.id),
    col(_I.tenant_id),
    col(_I.credential_id),
    col(_I.expires_at),
    col(_I.submitted_at),
)


async def expire_one(conn: Conn, tenant_id: str, interaction_id: str, *, now: float) -> Any:
    """Expire one interaction whose time is up; the row if this call did it, else None."""
    await conn.execute(
        delete(ReceivedCode).where(
            col(ReceivedCode.id) == interaction_id, col(ReceivedCode.expires_at) <= now
        )
    )
    stmt = (
        update(_I)
        .where(
            col(_I.tenant_id) == tenant_id,
            col(_I.id) == interaction_id,
            col(_I.status).in_(OPEN),
            col(_I.expires_at) <= now,
        )
        .values(status=EXPIRED, code=None)
        .returning(*_EXPIRED_RETURNING)
    )
    return (await conn.execute(stmt)).first()


async def due(conn: Conn, *, now: float, limit: int) -> list[str]:
    """Ids of up to *limit* open interactions whose time is up (the sweeper's read)."""
    stmt = (
        select(col(_I.id))
        .where(col(_I.status).in_(OPEN), col(_I.expires_at) <= now)
        .order_by(col(_I.expires_at))
        .limit(limit)
    )
    return list((await conn.execute(stmt)).scalars().all())


async def expire_due(conn: Conn, interaction_ids: Sequence[str], *, now: float) -> Sequence[Any]:
    """Expire those of *interaction_ids* still open and out of time; the rows expired here."""
    if not interaction_ids:
        return []
    await conn.execute(
        delete(ReceivedCode).where(
            col(ReceivedCode.id).in_(interaction_ids), col(ReceivedCode.expires_at) <= now
        )
    )
    stmt = (
        update(_I)
        .where(col(_I.id).in_(interaction_ids), col(_I.status).in_(OPEN), col(_I.expires_at) <= now)
        .values(status=EXPIRED, code=None)
        .returning(*_EXPIRED_RETURNING)
    )
    return (await conn.execute(stmt)).all()


def _finished_before(before: float) -> tuple[Any, ...]:
    return col(_I.status).in_(FINISHED), col(_I.expires_at) < before


async def any_finished_before(conn: Conn, *, before: float) -> bool:
    return await any_row(conn, col(_I.expires_at), *_finished_before(before))


async def forget_finished(conn: Conn, *, before: float) -> int:
    """Delete finished interactions whose time ended before *before*."""
    result = await conn.execute(delete(_I).where(*_finished_before(before)))
    return int(result.rowcount or 0)


async def open_for_tenant(
    conn: Conn, tenant_id: str, *, now: float, credential_id: str | None, limit: int
) -> Sequence[Any]:
    """The tenant's requests still open at *now*, soonest deadline first, with credential names."""
    stmt: Any = (
        select(
            *_SHOWN,
            col(_I.match),
            col(Credential.data_key),
            col(Credential.name).label("credential_name"),
        )
        .join(Credential, col(Credential.id) == col(_I.credential_id))
        .where(
            col(_I.tenant_id) == tenant_id,
            col(_I.status).in_(OPEN),
            col(_I.expires_at) > now,
        )
        .order_by(col(_I.expires_at), col(_I.id))
        .limit(limit)
    )
    if credential_id is not None:
        stmt = stmt.where(col(_I.credential_id) == credential_id)
    rows: Sequence[Any] = (await conn.execute(stmt)).all()
    return rows
