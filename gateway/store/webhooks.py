"""Queries on webhook endpoints and their delivery outbox.

:func:`enqueue` is called inside the transaction that causes an event (a
code stored, an interaction opened), so an event is queued exactly when its
cause is committed: one ``INSERT ... SELECT`` copies it to every enabled
endpoint of the tenant that subscribed to it, with no read beforehand.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    String,
    Text,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlmodel import col

from ..events import NAMES, event_body
from .db import Conn, any_row
from .models import Tenant, Webhook, WebhookAttempt, WebhookDelivery
from .outbox import OutboxTable


# Built once: constructing the statement costs far more than running it.
def fan_out_when(*conditions: Any) -> Any:
    """The statement that queues one event for each subscribed endpoint, under *conditions*.

    Its parameters come from :func:`fan_out_params` (plus any *conditions* name).
    """
    return insert(WebhookDelivery).from_select(
        [
            "id",
            "webhook_id",
            "tenant_id",
            "event",
            "body",
            "created_at",
            "attempts",
            "next_attempt_at",
            "lease_until",
        ],
        _subscribed().where(*conditions),
    )


def _subscribed() -> Any:
    return select(
        bindparam("prefix", type_=String).concat(col(Webhook.id)),
        col(Webhook.id),
        col(Webhook.tenant_id),
        bindparam("event", type_=String),
        bindparam("body", type_=Text),
        bindparam("now", type_=Float),
        literal_column("0", Integer),
        bindparam("now", type_=Float),
        literal_column("0.0", Float),
    ).where(
        col(Webhook.tenant_id) == bindparam("tenant_id"),
        col(Webhook.enabled).is_(True),
        col(Webhook.events).contains(bindparam("subscribed", type_=String)),
    )


_FAN_OUT = fan_out_when()


def fan_out_params(
    tenant_id: str, event: str, data: dict[str, Any], *, now: float
) -> dict[str, Any]:
    """The parameters that queue one event (see :func:`enqueue_many`)."""
    if event not in NAMES:
        raise ValueError(f"unknown event {event!r}")
    return {
        "prefix": f"msg_{uuid.uuid4().hex}_",
        "event": event,
        "body": event_body(event, data, now),
        "now": now,
        "tenant_id": tenant_id,
        "subscribed": f",{event},",
    }


async def enqueue(
    conn: Conn, tenant_id: str, event: str, data: dict[str, Any], *, now: float
) -> None:
    """Queue *event* for each of the tenant's enabled endpoints subscribed to it.

    Each delivery's id, ``msg_<event id>_<endpoint id>``, is the
    ``webhook-id`` it is sent with on every attempt.
    """
    await enqueue_many(conn, [fan_out_params(tenant_id, event, data, now=now)])


async def enqueue_many(conn: Conn, events: Sequence[dict[str, Any]]) -> None:
    """Queue several events (from :func:`fan_out_params`) in one statement run."""
    if events:
        await conn.execute(_FAN_OUT, list(events))


# -- endpoints ----------------------------------------------------------------------

# What the API may show of an endpoint, with the number of deliveries it has queued.
_PENDING = (
    select(func.count())
    .where(col(WebhookDelivery.webhook_id) == col(Webhook.id))
    .correlate(Webhook)
    .scalar_subquery()
    .label("pending")
)
_PUBLIC = (
    col(Webhook.id),
    col(Webhook.url),
    col(Webhook.events),
    col(Webhook.enabled),
    col(Webhook.disabled_reason),
    col(Webhook.previous_until),
    col(Webhook.created_at),
    _PENDING,
)


def encode_events(events: Sequence[str]) -> str:
    """The events column: ``,a,b,`` so that ``LIKE '%,a,%'`` finds a subscriber."""
    return "," + ",".join(events) + ","


def decode_events(raw: str) -> list[str]:
    return [e for e in raw.split(",") if e]


async def lock_tenant(conn: Conn, tenant_id: str) -> None:
    """Serialise changes to one tenant's endpoints (PostgreSQL; SQLite's writes are serial)."""
    await conn.execute(select(col(Tenant.id)).where(col(Tenant.id) == tenant_id).with_for_update())


async def count_webhooks(conn: Conn, tenant_id: str) -> int:
    stmt = select(func.count()).where(col(Webhook.tenant_id) == tenant_id)
    return int((await conn.execute(stmt)).scalar_one())


async def insert_webhook(conn: Conn, **values: Any) -> None:
    await conn.execute(insert(Webhook).values(**values))


async def get_public(conn: Conn, tenant_id: str, webhook_id: str) -> Any:
    stmt = select(*_PUBLIC).where(
        col(Webhook.tenant_id) == tenant_id, col(Webhook.id) == webhook_id
    )
    return (await conn.execute(stmt)).first()


async def list_public(conn: Conn, tenant_id: str) -> Sequence[Any]:
    stmt = select(*_PUBLIC).where(col(Webhook.tenant_id) == tenant_id).order_by(col(Webhook.id))
    return (await conn.execute(stmt)).all()


async def get_sealed(conn: Conn, tenant_id: str, webhook_id: str) -> Any:
    """``(data_key, secret)`` of one endpoint, or None."""
    stmt = select(col(Webhook.data_key), col(Webhook.secret)).where(
        col(Webhook.tenant_id) == tenant_id, col(Webhook.id) == webhook_id
    )
    return (await conn.execute(stmt)).first()


async def update_webhook(conn: Conn, tenant_id: str, webhook_id: str, **values: Any) -> bool:
    result = await conn.execute(
        update(Webhook)
        .where(col(Webhook.tenant_id) == tenant_id, col(Webhook.id) == webhook_id)
        .values(**values)
    )
    return bool(result.rowcount)


async def delete_webhook(conn: Conn, tenant_id: str, webhook_id: str) -> bool:
    """Delete an endpoint, every delivery still queued for it and its attempts' record."""
    await conn.execute(
        delete(WebhookAttempt).where(
            col(WebhookAttempt.tenant_id) == tenant_id,
            col(WebhookAttempt.webhook_id) == webhook_id,
        )
    )
    await conn.execute(
        delete(WebhookDelivery).where(
            col(WebhookDelivery.tenant_id) == tenant_id,
            col(WebhookDelivery.webhook_id) == webhook_id,
        )
    )
    result = await conn.execute(
        delete(Webhook).where(col(Webhook.tenant_id) == tenant_id, col(Webhook.id) == webhook_id)
    )
    return bool(result.rowcount)


# -- the outbox ---------------------------------------------------------------------


_OUTBOX = OutboxTable(WebhookDelivery)


async def any_due(conn: Conn, now: float) -> bool:
    """Whether some delivery is due and free: a cheap read before taking the write lock."""
    return await _OUTBOX.any_due(conn, now)


async def claim(conn: Conn, now: float, *, lease: float, limit: int) -> Sequence[Any]:
    """Lease up to *limit* due deliveries and count the attempt each is about to get.

    Returns the deliveries with their endpoint's URL, state and sealed secrets.
    """
    ids = await _OUTBOX.claim(conn, now, lease=lease, limit=limit)
    if not ids:
        return []
    stmt = (
        select(
            col(WebhookDelivery.id),
            col(WebhookDelivery.webhook_id),
            col(WebhookDelivery.tenant_id),
            col(WebhookDelivery.event),
            col(WebhookDelivery.body),
            col(WebhookDelivery.created_at),
            col(WebhookDelivery.attempts),
            col(Webhook.url),
            col(Webhook.enabled),
            col(Webhook.data_key),
            col(Webhook.secret),
            col(Webhook.previous_secret),
            col(Webhook.previous_until),
        )
        .join(Webhook, col(Webhook.id) == col(WebhookDelivery.webhook_id))
        .where(col(WebhookDelivery.id).in_(ids))
    )
    return (await conn.execute(stmt)).all()


async def delivered(conn: Conn, delivery_id: str) -> None:
    await conn.execute(delete(WebhookDelivery).where(col(WebhookDelivery.id) == delivery_id))


async def retry_later(
    conn: Conn, delivery_id: str, *, at: float, status: int | None, error: str | None
) -> None:
    """Record a failed attempt and free the delivery for its next one at *at*."""
    await conn.execute(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.id) == delivery_id)
        .values(next_attempt_at=at, lease_until=0.0, last_status=status, last_error=error)
    )


async def release(conn: Conn, delivery_ids: Sequence[str]) -> None:
    """Give back leases whose attempts never finished (shutdown), so they go out at once."""
    await _OUTBOX.release(conn, delivery_ids)


async def disable(conn: Conn, webhook_id: str, *, reason: str) -> None:
    """Turn an endpoint off and drop everything still queued for it."""
    await conn.execute(
        update(Webhook)
        .where(col(Webhook.id) == webhook_id)
        .values(enabled=False, disabled_reason=reason)
    )
    await conn.execute(delete(WebhookDelivery).where(col(WebhookDelivery.webhook_id) == webhook_id))


async def queued(conn: Conn, tenant_id: str, *, limit: int) -> Sequence[Any]:
    """The tenant's deliveries not yet delivered nor given up, newest first (never a body)."""
    stmt = (
        select(
            col(WebhookDelivery.id),
            col(WebhookDelivery.webhook_id),
            col(WebhookDelivery.event),
            col(WebhookDelivery.created_at),
            col(WebhookDelivery.attempts),
            col(WebhookDelivery.next_attempt_at),
            col(WebhookDelivery.last_status),
            col(WebhookDelivery.last_error),
        )
        .where(col(WebhookDelivery.tenant_id) == tenant_id)
        .order_by(col(WebhookDelivery.created_at).desc())
        .limit(limit)
    )
    return (await conn.execute(stmt)).all()


# -- what became of the attempts ------------------------------------------------------


async def record_attempt(conn: Conn, **values: Any) -> None:
    """Keep what one attempt came to (in the transaction that settles the delivery)."""
    await conn.execute(insert(WebhookAttempt).values(**values))


async def recent_attempts(conn: Conn, tenant_id: str, *, limit: int) -> Sequence[Any]:
    """The tenant's latest attempts, newest first."""
    stmt = (
        select(
            col(WebhookAttempt.webhook_id),
            col(WebhookAttempt.event),
            col(WebhookAttempt.attempt),
            col(WebhookAttempt.at),
            col(WebhookAttempt.outcome),
            col(WebhookAttempt.status),
            col(WebhookAttempt.error),
        )
        .where(col(WebhookAttempt.tenant_id) == tenant_id)
        .order_by(col(WebhookAttempt.at).desc(), col(WebhookAttempt.id).desc())
        .limit(limit)
    )
    rows: Sequence[Any] = (await conn.execute(stmt)).all()
    return rows


async def any_attempt_before(conn: Conn, *, before: float) -> bool:
    return await any_row(conn, col(WebhookAttempt.at), col(WebhookAttempt.at) < before)


async def forget_attempts(conn: Conn, *, before: float) -> int:
    result = await conn.execute(delete(WebhookAttempt).where(col(WebhookAttempt.at) < before))
    return int(result.rowcount or 0)
