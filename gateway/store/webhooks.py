"""Queries on webhook endpoints and their delivery outbox.

:func:`enqueue` is called inside the transaction that causes an event (a
code stored, an interaction opened), so an event is queued exactly when its
cause is committed: one ``INSERT ... SELECT`` copies it to every enabled
endpoint of the tenant that subscribed to it, with no read beforehand.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, literal, select
from sqlmodel import col

from .db import Conn
from .models import Webhook, WebhookDelivery

EVENTS = (
    "interaction.code_required",
    "interaction.code_submitted",
    "interaction.expired",
    "code.received",
)


def event_body(event: str, data: dict[str, Any], now: float) -> str:
    """The delivered JSON, byte for byte: ``{"type", "timestamp", "data"}``."""
    stamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
    return json.dumps(
        {"type": event, "timestamp": stamp.replace("+00:00", "Z"), "data": data},
        separators=(",", ":"),
        sort_keys=True,
    )


async def enqueue(
    conn: Conn, tenant_id: str, event: str, data: dict[str, Any], *, now: float
) -> None:
    """Queue *event* for each of the tenant's enabled endpoints subscribed to it.

    Each delivery's id, ``msg_<event id>_<endpoint id>``, is the
    ``webhook-id`` it is sent with on every attempt.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    prefix = f"msg_{uuid.uuid4().hex}_"
    rows = select(
        literal(prefix).concat(col(Webhook.id)),
        col(Webhook.id),
        col(Webhook.tenant_id),
        literal(event),
        literal(event_body(event, data, now)),
        literal(now),
        literal(0),
        literal(now),
        literal(0.0),
    ).where(
        col(Webhook.tenant_id) == tenant_id,
        col(Webhook.enabled).is_(True),
        col(Webhook.events).contains(f",{event},"),
    )
    await conn.execute(
        insert(WebhookDelivery).from_select(
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
            rows,
        )
    )
