"""Delivering webhook events, signed as Standard Webhooks says: the webhook outbox's sender.

:func:`gateway.store.webhooks.enqueue` queues one row per endpoint in the
transaction that caused the event; the :class:`~.outbox.Outbox` running
:class:`WebhookDelivery` leases due rows and posts each through the SSRF
guard with ``webhook-id`` (the row id, the same on every attempt),
``webhook-timestamp`` and ``webhook-signature``, and then:

- 2xx: delivered, the row is deleted;
- 410 Gone: the endpoint is disabled and everything queued for it dropped;
- anything else (a 3xx too: redirects are never followed), a timeout or a
  connection failure: retried after a jittered, growing delay
  (``RETRY_DELAYS``), given up after ``MAX_ATTEMPTS`` attempts or once the
  event is ``GIVE_UP_AFTER`` seconds old.

Rows stay in the database until one of those outcomes, so a restart loses
nothing; a lease whose attempt never finished lapses after ``LEASE``.
Delivery is at least once: receivers deduplicate on ``webhook-id``.

Payloads are metadata only, built by :mod:`gateway.events`; nothing here adds
to them but the ``submit_url`` of ``interaction.code_required``, put in at each
attempt, and no log line or recorded error holds a body or secret.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import hmac
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver

from .. import ids, netguard
from ..errors import VaultError
from ..events import CODE_REQUIRED
from ..store import webhooks as webhook_rows
from ..store.db import Conn, Database
from ..vault import Vault
from .interactions import fill_submit_url
from .outbox import Attempt, Backoff, Sender
from .webhooks import SEAL_CURRENT, SEAL_PREVIOUS

log = logging.getLogger("otpgate.webhooks")

#: Seconds a worker holds a delivery it is sending (well above the timeout).
LEASE = 60.0
#: Seconds one attempt may take, connecting included.
TIMEOUT = 15.0
#: Deliveries sent at once by one worker.
IN_FLIGHT = 8
#: Upper bounds of the wait after the 1st, 2nd, ... failed attempt; the last repeats.
RETRY_DELAYS = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0)
MAX_ATTEMPTS = 15
#: Seconds after which an event that could not be delivered is given up.
GIVE_UP_AFTER = 24 * 3600.0
USER_AGENT = "otpgate-webhooks/1"


@dataclass(frozen=True, slots=True)
class LeasedDelivery:
    """One leased delivery and what is needed to send it."""

    id: str
    webhook_id: str
    tenant_id: str
    event: str
    body: str
    created_at: float
    attempt: int
    url: str
    enabled: bool
    data_key: bytes
    secret: bytes
    previous_secret: bytes | None
    previous_until: float | None


def signature(msg_id: str, timestamp: int, body: str, keys: Iterable[bytes]) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256>`` per key, space-separated."""
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    return " ".join(
        "v1," + base64.b64encode(hmac.digest(key, signed, "sha256")).decode() for key in keys
    )


def _describe(exc: BaseException, timeout: float) -> str:
    """A short reason for a failed attempt: no address, body or secret in it."""
    refusal = netguard.describe_refusal(exc)
    if refusal is not None:
        return refusal[:300]
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts subclass it
        return f"no answer within {timeout:g} s"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "the TLS certificate was not accepted"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "the TLS handshake failed"
    if isinstance(exc, aiohttp.ClientConnectorError):
        number = exc.os_error.errno
        # The OS's words only: aiohttp's message names the address it tried.
        return f"cannot connect ({os.strerror(number) if number else 'no route'})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without answering"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "the answer was not valid HTTP"
    return f"the request failed ({type(exc).__name__})"


class WebhookDelivery(Sender[LeasedDelivery]):
    name = "webhooks"
    in_flight = IN_FLIGHT
    lease = LEASE

    def __init__(
        self,
        db: Database,
        vault: Vault,
        *,
        allow_private: bool,
        public_url: str,
        resolver: AbstractResolver | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = TIMEOUT,
        retry_delays: Sequence[float] = RETRY_DELAYS,
    ) -> None:
        self._db = db
        self._public_url = public_url
        self._vault = vault
        self._allow_private = allow_private
        self._resolver = resolver
        self._clock = clock
        self._timeout = timeout
        self._backoff = Backoff(
            tuple(retry_delays), floor=0.1, max_attempts=MAX_ATTEMPTS, max_age=GIVE_UP_AFTER
        )
        #: Each attempt is bounded by the timeout.
        self.drain_timeout = timeout + 1

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[Attempt[LeasedDelivery]]:
        """One HTTP session for the run, closed when it ends."""
        session = aiohttp.ClientSession(
            connector=netguard.guarded_connector(
                allow_private=self._allow_private, resolver=self._resolver, limit=IN_FLIGHT
            ),
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": USER_AGENT},
        )
        try:
            yield functools.partial(self._deliver, session)
        finally:
            await session.close()

    async def claim(self, room: int) -> Sequence[LeasedDelivery]:
        now = self._clock()
        async with self._db.read() as conn:
            if not await webhook_rows.any_due(conn, now):
                return []
        async with self._db.write() as conn:
            rows = await webhook_rows.claim(conn, now, lease=LEASE, limit=room)
        return [_leased(r) for r in rows]

    async def release(self, ids: Sequence[str]) -> None:
        async with self._db.write() as conn:
            await webhook_rows.release(conn, ids)

    def _signing_keys(self, job: LeasedDelivery, now: float) -> Sequence[bytes]:
        """The current secret, and the previous one while its overlap lasts."""
        sealed = [(job.secret, SEAL_CURRENT)]
        if job.previous_secret is not None and (job.previous_until or 0.0) > now:
            sealed.append((job.previous_secret, SEAL_PREVIOUS))
        dek = self._vault.unwrap_data_key(
            job.data_key, tenant_id=job.tenant_id, credential_id=job.webhook_id
        )
        return [
            self._vault.open_field(
                dek, secret, tenant_id=job.tenant_id, credential_id=job.webhook_id, field=field
            )
            for secret, field in sealed
        ]

    async def _deliver(self, session: aiohttp.ClientSession, job: LeasedDelivery) -> None:
        if not job.enabled:  # disabled after the event was queued
            async with self._db.write() as conn:
                await webhook_rows.delivered(conn, job.id)
            return
        status: int | None = None
        error: str | None
        try:
            keys = self._signing_keys(job, self._clock())
            if job.event == CODE_REQUIRED.name:
                body = await fill_submit_url(self._db, self._vault, self._public_url, job.body)
                job = dataclasses.replace(job, body=body)
        except VaultError:
            error = "the signing secret or the submit link could not be opened"
        else:
            status, error = await self._send(session, job, keys)
        if status is not None and 200 <= status < 300:
            async with self._db.write() as conn:
                await webhook_rows.delivered(conn, job.id)
                await self._record(conn, job, "delivered", status, None)
            return
        if status == 410:
            reason = "the endpoint answered 410 Gone"
            async with self._db.write() as conn:
                await webhook_rows.disable(conn, job.webhook_id, reason=reason)
                await self._record(conn, job, "disabled", status, reason)
            log.warning(
                "webhook disabled: the endpoint answered 410 Gone; its queued deliveries dropped",
                extra={"tenant": job.tenant_id, "webhook": job.webhook_id},
            )
            return
        if status is not None:
            error = f"HTTP {status}" + (
                " (redirects are not followed)" if 300 <= status < 400 else ""
            )
        log.warning(
            "webhook delivery failed",
            extra={
                "webhook": job.webhook_id,
                "delivery": job.id,
                "attempt": job.attempt,
                "status": status,
                "error": error,
            },
        )
        at = self._backoff.next_attempt(job.attempt, job.created_at, self._clock())
        if at is None:
            async with self._db.write() as conn:
                await webhook_rows.delivered(conn, job.id)
                await self._record(conn, job, "given_up", status, error)
            log.warning(
                "webhook delivery given up",
                extra={
                    "webhook": job.webhook_id,
                    "delivery": job.id,
                    "event": job.event,
                    "attempts": job.attempt,
                },
            )
            return
        async with self._db.write() as conn:
            await webhook_rows.retry_later(conn, job.id, at=at, status=status, error=error)
            await self._record(conn, job, "retrying", status, error)

    async def _record(
        self, conn: Conn, job: LeasedDelivery, outcome: str, status: int | None, error: str | None
    ) -> None:
        """What this attempt came to, for the pages (in the write that settles it)."""
        await webhook_rows.record_attempt(
            conn,
            id=ids.new_id(ids.WEBHOOK_ATTEMPT),
            tenant_id=job.tenant_id,
            webhook_id=job.webhook_id,
            event=job.event,
            attempt=job.attempt,
            at=self._clock(),
            outcome=outcome,
            status=status,
            error=None if error is None else error[:300],
        )

    async def _send(
        self, session: aiohttp.ClientSession, job: LeasedDelivery, keys: Sequence[bytes]
    ) -> tuple[int | None, str | None]:
        """One POST; ``(status, None)`` if the endpoint answered, else ``(None, reason)``."""
        timestamp = int(self._clock())
        headers = {
            "webhook-id": job.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(job.id, timestamp, job.body, keys),
            "content-type": "application/json",
        }
        try:
            async with session.post(
                job.url, data=job.body.encode(), headers=headers, allow_redirects=False
            ) as resp:
                return resp.status, None
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, _describe(exc, self._timeout)


def _leased(row: Any) -> LeasedDelivery:
    return LeasedDelivery(
        id=row.id,
        webhook_id=row.webhook_id,
        tenant_id=row.tenant_id,
        event=row.event,
        body=row.body,
        created_at=row.created_at,
        attempt=int(row.attempts),
        url=row.url,
        enabled=bool(row.enabled),
        data_key=row.data_key,
        secret=row.secret,
        previous_secret=row.previous_secret,
        previous_until=row.previous_until,
    )
