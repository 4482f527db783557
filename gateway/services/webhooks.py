"""Webhook endpoints: a tenant's URLs, their subscriptions and their signing secrets.

A tenant registers up to ``MAX_WEBHOOKS`` URLs, each subscribed to some of
the events of :data:`gateway.events.CATALOGUE`.  Each has its own data key,
wrapped by the master key ring; its signing secret (``whsec_`` and base64 of
32 random bytes) is sealed with that key and shown once, at creation or
rotation.  After a rotation the previous secret keeps signing beside the new
one for ``ROTATION_OVERLAP`` seconds, so receivers can switch over.

Events are queued by :func:`gateway.store.webhooks.enqueue` in the
transaction that causes them, and delivered by
:mod:`gateway.services.webhook_delivery`.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import ids, netguard
from ..errors import Invalid, NotFound
from ..events import check_subscription
from ..store import webhooks as webhook_rows
from ..store.db import Database
from ..vault import Vault

log = logging.getLogger("otpgate.webhooks")

#: Endpoints one tenant may register.
MAX_WEBHOOKS = 20
WHSEC_PREFIX = "whsec_"
SECRET_BYTES = 32
#: Seconds the previous secret keeps signing after a rotation.
ROTATION_OVERLAP = 24 * 3600.0

#: The fields the current and the previous signing secret are sealed as.
SEAL_CURRENT = "webhook_secret"
SEAL_PREVIOUS = "webhook_previous_secret"


@dataclass(frozen=True, slots=True)
class WebhookInfo:
    """What the API may show of an endpoint: never a secret."""

    id: str
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    #: Deliveries queued and not yet delivered or given up.
    pending: int
    #: Until when the secret before the last rotation still signs; None if it does not.
    previous_secret_until: float | None
    created_at: float


@dataclass(frozen=True, slots=True)
class QueuedDelivery:
    """A delivery not yet delivered nor given up (delivered ones leave the queue)."""

    id: str
    webhook_id: str
    event: str
    created_at: float
    attempts: int
    next_attempt_at: float
    #: The HTTP status of the last attempt, None before the first or when it got no answer.
    last_status: int | None
    last_error: str | None


#: Seconds the record of each delivery attempt is kept (the pages show the recent ones).
KEEP_ATTEMPTS = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """What one attempt came to: ``delivered``, ``retrying``, ``given_up`` or ``disabled``."""

    webhook_id: str
    event: str
    attempt: int
    at: float
    outcome: str
    status: int | None
    error: str | None


def encode_secret(key: bytes) -> str:
    return WHSEC_PREFIX + base64.b64encode(key).decode()


def _not_found() -> NotFound:
    return NotFound("no such webhook")


class WebhookEndpoints:
    """Register, show, delete, re-enable endpoints and rotate their signing secrets."""

    def __init__(
        self,
        db: Database,
        vault: Vault,
        *,
        allow_private: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._vault = vault
        self._allow_private = allow_private
        self._clock = clock

    def _info(self, row: Any) -> WebhookInfo:
        until = row.previous_until
        return WebhookInfo(
            id=row.id,
            url=row.url,
            events=webhook_rows.decode_events(row.events),
            enabled=bool(row.enabled),
            disabled_reason=row.disabled_reason,
            pending=int(row.pending),
            previous_secret_until=until if until is not None and until > self._clock() else None,
            created_at=row.created_at,
        )

    def _seal(self, tenant_id: str, webhook_id: str, dek: bytes, field: str, key: bytes) -> bytes:
        return self._vault.seal_field(
            dek, key, tenant_id=tenant_id, credential_id=webhook_id, field=field
        )

    async def create(
        self, tenant_id: str, *, url: str, events: Sequence[str]
    ) -> tuple[WebhookInfo, str]:
        """Register an endpoint; returns it and its signing secret (shown this once)."""
        url = netguard.check_url(url, allow_private=self._allow_private)
        chosen = check_subscription(events)
        webhook_id = ids.new_id(ids.WEBHOOK)
        key = os.urandom(SECRET_BYTES)
        dek = self._vault.new_data_key()
        wrapped = self._vault.wrap_data_key(dek, tenant_id=tenant_id, credential_id=webhook_id)
        sealed = self._seal(tenant_id, webhook_id, dek, SEAL_CURRENT, key)
        async with self._db.write() as conn:
            await webhook_rows.lock_tenant(conn, tenant_id)
            if await webhook_rows.count_webhooks(conn, tenant_id) >= MAX_WEBHOOKS:
                raise Invalid(
                    f"a tenant may have at most {MAX_WEBHOOKS} webhooks; delete one first",
                    code="too_many_webhooks",
                )
            await webhook_rows.insert_webhook(
                conn,
                id=webhook_id,
                tenant_id=tenant_id,
                url=url,
                events=webhook_rows.encode_events(chosen),
                enabled=True,
                data_key=wrapped,
                key_version=self._vault.wrapped_version(wrapped),
                secret=sealed,
                created_at=self._clock(),
            )
            row = await webhook_rows.get_public(conn, tenant_id, webhook_id)
        log.info("webhook created", extra={"tenant": tenant_id, "webhook": webhook_id})
        return self._info(row), encode_secret(key)

    async def get(self, tenant_id: str, webhook_id: str) -> WebhookInfo:
        async with self._db.read() as conn:
            row = await webhook_rows.get_public(conn, tenant_id, webhook_id)
        if row is None:
            raise _not_found()
        return self._info(row)

    async def list(self, tenant_id: str) -> list[WebhookInfo]:
        async with self._db.read() as conn:
            rows = await webhook_rows.list_public(conn, tenant_id)
        return [self._info(r) for r in rows]

    async def delete(self, tenant_id: str, webhook_id: str) -> None:
        """Remove an endpoint; what was still queued for it is dropped."""
        async with self._db.write() as conn:
            if not await webhook_rows.delete_webhook(conn, tenant_id, webhook_id):
                raise _not_found()
        log.info("webhook deleted", extra={"tenant": tenant_id, "webhook": webhook_id})

    async def rotate(self, tenant_id: str, webhook_id: str) -> tuple[str, float]:
        """A new signing secret; the current one keeps signing too until the returned time.

        Rotating again within the overlap retires the older secret at once:
        only the two newest ever sign.
        """
        key = os.urandom(SECRET_BYTES)
        async with self._db.write() as conn:
            row = await webhook_rows.get_sealed(conn, tenant_id, webhook_id)
            if row is None:
                raise _not_found()
            dek = self._vault.unwrap_data_key(
                row.data_key, tenant_id=tenant_id, credential_id=webhook_id
            )
            current = self._vault.open_field(
                dek, row.secret, tenant_id=tenant_id, credential_id=webhook_id, field=SEAL_CURRENT
            )
            until = self._clock() + ROTATION_OVERLAP
            await webhook_rows.update_webhook(
                conn,
                tenant_id,
                webhook_id,
                secret=self._seal(tenant_id, webhook_id, dek, SEAL_CURRENT, key),
                previous_secret=self._seal(tenant_id, webhook_id, dek, SEAL_PREVIOUS, current),
                previous_until=until,
            )
        log.info("webhook secret rotated", extra={"tenant": tenant_id, "webhook": webhook_id})
        return encode_secret(key), until

    async def enable(self, tenant_id: str, webhook_id: str) -> WebhookInfo:
        """Turn an endpoint back on (after a 410 disabled it); events queue again from now."""
        async with self._db.write() as conn:
            if not await webhook_rows.update_webhook(
                conn, tenant_id, webhook_id, enabled=True, disabled_reason=None
            ):
                raise _not_found()
            row = await webhook_rows.get_public(conn, tenant_id, webhook_id)
        log.info("webhook enabled", extra={"tenant": tenant_id, "webhook": webhook_id})
        return self._info(row)

    async def queued(self, tenant_id: str, *, limit: int = 50) -> Sequence[QueuedDelivery]:
        """Deliveries still on their way, newest first: event, attempts, last answer."""
        async with self._db.read() as conn:
            rows = await webhook_rows.queued(conn, tenant_id, limit=limit)
        return [
            QueuedDelivery(
                id=r.id,
                webhook_id=r.webhook_id,
                event=r.event,
                created_at=r.created_at,
                attempts=r.attempts,
                next_attempt_at=r.next_attempt_at,
                last_status=r.last_status,
                last_error=r.last_error,
            )
            for r in rows
        ]

    async def recent_attempts(
        self, tenant_id: str, *, limit: int = 50
    ) -> Sequence[DeliveryAttempt]:
        """What the latest attempts came to, newest first (kept for :data:`KEEP_ATTEMPTS`)."""
        async with self._db.read() as conn:
            rows = await webhook_rows.recent_attempts(conn, tenant_id, limit=limit)
        return [
            DeliveryAttempt(
                webhook_id=r.webhook_id,
                event=r.event,
                attempt=r.attempt,
                at=r.at,
                outcome=r.outcome,
                status=r.status,
                error=r.error,
            )
            for r in rows
        ]

    async def forget_attempts(self) -> int:
        """Drop the record of attempts older than :data:`KEEP_ATTEMPTS`."""
        before = self._clock() - KEEP_ATTEMPTS
        return await self._db.sweep(
            lambda conn: webhook_rows.any_attempt_before(conn, before=before),
            lambda conn: webhook_rows.forget_attempts(conn, before=before),
        )
