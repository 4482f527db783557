"""What one inbound message writes, in one transaction, and the lookups that route it.

A message (a mail, or a text from Twilio or an Android phone) may write:

- :class:`CodeRow`: a sealed code for the agent (``received_codes``);
- :class:`ForwardCopyRow`: a sealed copy for each forwarding rule (``forward_outbox``);
- :class:`EventRow`: a ``code.received`` webhook event for each subscribed endpoint;
- :class:`SeenRow`: the provider's message id, so a redelivery is stored once;
- :class:`UnsolicitedRow`: ``code.unsolicited``, queued only if, in this
  transaction, no login is open on the credential and no agent waits on it
  (``store.presence``);
- :class:`.counts.CountRow`: the message counted for its credential's day and channel.

Writing them together is what makes a forward or a webhook exactly as
durable as the code it is about: all are committed, or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Integer, LargeBinary, String, bindparam, delete, insert, select
from sqlmodel import col

from ..events import Event
from . import counts, presence
from .codes import ROUTE_COLUMNS, CodeRow, insert_codes
from .counts import CountRow
from .db import Conn, any_row
from .models import Credential, Forward, ForwardOutbox, InboundSeen, SmsDevice
from .webhooks import enqueue_many, fan_out_params


# Not frozen: a frozen dataclass's __init__ costs four times a dict's, and one is
# made for every row of every message (the group commit's hot path).
@dataclass(slots=True)
class ForwardCopyRow:
    """A message's sealed copy for one forwarding rule, due at once."""

    id: str
    forward_id: str
    tenant_id: str
    credential_id: str
    payload: bytes
    created_at: float

    def params(self) -> dict[str, Any]:
        """The outbox row's columns: pending, no attempt yet, due at once."""
        return {
            "id": self.id,
            "forward_id": self.forward_id,
            "tenant_id": self.tenant_id,
            "credential_id": self.credential_id,
            "payload": self.payload,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": self.created_at,
            "lease_until": 0.0,
            "last_error": None,
            "created_at": self.created_at,
        }


@dataclass(slots=True)
class EventRow:
    """A webhook event, queued for each of the tenant's endpoints subscribed to it."""

    tenant_id: str
    event: Event
    now: float

    def params(self) -> dict[str, Any]:
        """The parameters that fan the event out (see :func:`.webhooks.fan_out_params`)."""
        return fan_out_params(self.tenant_id, self.event.type, self.event.data, now=self.now)


@dataclass(slots=True)
class UnsolicitedRow:
    """``code.unsolicited`` for a credential, if nobody signs in to it when this commits."""

    tenant_id: str
    event: Event
    now: float


@dataclass(slots=True)
class SeenRow:
    """A provider's message id: a second delivery of it is refused."""

    provider: str
    message_id: str
    seen_at: float

    def params(self) -> dict[str, Any]:
        return {"provider": self.provider, "message_id": self.message_id, "seen_at": self.seen_at}


#: One row that a message writes.
Write = CodeRow | ForwardCopyRow | EventRow | SeenRow | CountRow | UnsolicitedRow

# Built once: building a statement costs more than running it on SQLite.
_INSERT_SEEN = insert(InboundSeen)
# A copy for each rule that still exists: a rule deleted after the message's
# route was looked up (on another replica, a moment before) gets none, and the
# message is stored all the same.
_INSERT_FORWARDS = insert(ForwardOutbox).from_select(
    [
        "id",
        "forward_id",
        "tenant_id",
        "credential_id",
        "payload",
        "state",
        "attempts",
        "next_attempt_at",
        "lease_until",
        "last_error",
        "created_at",
    ],
    select(
        bindparam("id", type_=String),
        col(Forward.id),
        bindparam("tenant_id", type_=String),
        bindparam("credential_id", type_=String),
        bindparam("payload", type_=LargeBinary),
        bindparam("state", type_=String),
        bindparam("attempts", type_=Integer),
        bindparam("next_attempt_at", type_=Float),
        bindparam("lease_until", type_=Float),
        bindparam("last_error", type_=String),
        bindparam("created_at", type_=Float),
    ).where(col(Forward.id) == bindparam("forward_id")),
)
_SEEN = select(col(InboundSeen.seen_at)).where(
    col(InboundSeen.provider) == bindparam("provider"),
    col(InboundSeen.message_id) == bindparam("message_id"),
)
_FORWARD_IDS = (
    select(col(Forward.id))
    .where(col(Forward.credential_id) == bindparam("credential_id"))
    .order_by(col(Forward.id))
)


async def write(conn: Conn, items: Sequence[Write]) -> None:
    """Write one or many messages' rows (a group commit hands in several at once)."""
    codes: list[CodeRow] = []
    forwards: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    seen: list[dict[str, Any]] = []
    tallies: list[CountRow] = []
    unsolicited: list[UnsolicitedRow] = []
    for row in items:
        if isinstance(row, CodeRow):
            codes.append(row)
        elif isinstance(row, CountRow):
            tallies.append(row)
        elif isinstance(row, UnsolicitedRow):
            unsolicited.append(row)
        elif isinstance(row, ForwardCopyRow):
            forwards.append(row.params())
        elif isinstance(row, EventRow):
            events.append(row.params())
        else:
            seen.append(row.params())
    if seen:
        # First: a redelivery fails here, before anything else is written.
        await conn.execute(_INSERT_SEEN, seen)
    await insert_codes(conn, codes, wake=True)
    if forwards:
        await conn.execute(_INSERT_FORWARDS, forwards)
    await enqueue_many(conn, events)
    await presence.report_unattended(
        conn,
        [
            fan_out_params(r.tenant_id, r.event.type, r.event.data, now=r.now)
            | {"credential_id": r.event.data["credential_id"]}
            for r in unsolicited
        ],
    )
    await counts.add(conn, tallies)


async def seen(conn: Conn, provider: str, message_id: str) -> bool:
    params = {"provider": provider, "message_id": message_id}
    return (await conn.execute(_SEEN, params)).first() is not None


async def any_seen_before(conn: Conn, before: float) -> bool:
    return await any_row(conn, col(InboundSeen.seen_at), col(InboundSeen.seen_at) < before)


async def forget_seen(conn: Conn, before: float) -> int:
    result = await conn.execute(delete(InboundSeen).where(col(InboundSeen.seen_at) < before))
    return int(result.rowcount or 0)


async def forward_ids(conn: Conn, credential_id: str) -> tuple[str, ...]:
    rows = await conn.execute(_FORWARD_IDS, {"credential_id": credential_id})
    return tuple(rows.scalars().all())


async def devices(conn: Conn, device_id: str) -> Sequence[Any]:
    """The SIM mappings of an Android device, each with its credential's route columns."""
    stmt = (
        select(col(SmsDevice.sim_number), col(SmsDevice.signing_key), *ROUTE_COLUMNS)
        .join(Credential, col(Credential.id) == col(SmsDevice.credential_id))
        .where(col(SmsDevice.device_id) == device_id)
    )
    return (await conn.execute(stmt)).all()
