"""Webhook endpoints and their delivery worker, signed as Standard Webhooks says.

Endpoints
    A tenant registers up to ``MAX_WEBHOOKS`` URLs, each subscribed to some of
    the events of :data:`gateway.events.CATALOGUE`.  Each has its own data
    key, wrapped by the master key ring; its signing secret (``whsec_`` and
    base64 of 32 random bytes) is sealed with that key and shown once, at
    creation or rotation.  After a rotation the previous secret keeps signing beside the
    new one for ``ROTATION_OVERLAP`` seconds, so receivers can switch over.

Deliveries
    :func:`gateway.store.webhooks.enqueue` queues one row per endpoint in the
    transaction that caused the event; :meth:`WebhookService.run` sends them.
    It leases due rows (a compare-and-set on ``lease_until``, so replicas never
    send the same attempt at once), posts each through the SSRF guard with
    ``webhook-id`` (the row id, the same on every attempt),
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

import asyncio
import base64
import dataclasses
import hmac
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver

from .. import ids, netguard
from ..errors import Invalid, NotFound, VaultError
from ..events import CODE_REQUIRED, check_subscription
from ..metrics import Metrics
from ..store import webhooks as q
from ..store.db import Database
from ..vault import Vault
from .interactions import fill_submit_url

log = logging.getLogger("otpgate.webhooks")

#: Endpoints one tenant may register.
MAX_WEBHOOKS = 20
WHSEC_PREFIX = "whsec_"
SECRET_BYTES = 32
#: Seconds the previous secret keeps signing after a rotation.
ROTATION_OVERLAP = 24 * 3600.0
#: Seconds a worker holds a delivery it is sending (well above the timeout).
LEASE = 60.0
#: Seconds one attempt may take, connecting included.
TIMEOUT = 15.0
#: Deliveries sent at once by one worker.
IN_FLIGHT = 8
#: Shortest time between two looks at the outbox, however often it is woken.
MIN_GAP = 0.05
#: Seconds between looks at the outbox when nobody calls ``wake``.
POLL = 1.0
#: Upper bounds of the wait after the 1st, 2nd, ... failed attempt; the last repeats.
RETRY_DELAYS = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0)
MAX_ATTEMPTS = 15
#: Seconds after which an event that could not be delivered is given up.
GIVE_UP_AFTER = 24 * 3600.0
USER_AGENT = "otpgate-webhooks/1"

_SEAL_CURRENT = "webhook_secret"
_SEAL_PREVIOUS = "webhook_previous_secret"


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
class _Job:
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


def encode_secret(key: bytes) -> str:
    return WHSEC_PREFIX + base64.b64encode(key).decode()


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


def _not_found() -> NotFound:
    return NotFound("no such webhook")


class WebhookService:
    def __init__(
        self,
        db: Database,
        vault: Vault,
        metrics: Metrics,
        *,
        allow_private: bool,
        public_url: str,
        resolver: AbstractResolver | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = TIMEOUT,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        poll: float = POLL,
    ) -> None:
        self._db = db
        self._public_url = public_url
        self._vault = vault
        self._metrics = metrics
        self._allow_private = allow_private
        self._resolver = resolver
        self._clock = clock
        self._timeout = timeout
        self._retry_delays = tuple(retry_delays)
        self._poll = poll
        self._random = random.SystemRandom()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    # -- endpoints ------------------------------------------------------------------

    def _info(self, row: Any) -> WebhookInfo:
        until = row.previous_until
        return WebhookInfo(
            id=row.id,
            url=row.url,
            events=q.decode_events(row.events),
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
        sealed = self._seal(tenant_id, webhook_id, dek, _SEAL_CURRENT, key)
        async with self._db.write() as conn:
            await q.lock_tenant(conn, tenant_id)
            if await q.count_webhooks(conn, tenant_id) >= MAX_WEBHOOKS:
                raise Invalid(
                    f"a tenant may have at most {MAX_WEBHOOKS} webhooks; delete one first",
                    code="too_many_webhooks",
                )
            await q.insert_webhook(
                conn,
                id=webhook_id,
                tenant_id=tenant_id,
                url=url,
                events=q.encode_events(chosen),
                enabled=True,
                data_key=wrapped,
                key_version=self._vault.wrapped_version(wrapped),
                secret=sealed,
                created_at=self._clock(),
            )
            row = await q.get_public(conn, tenant_id, webhook_id)
        log.info("webhook created", extra={"tenant": tenant_id, "webhook": webhook_id})
        return self._info(row), encode_secret(key)

    async def get(self, tenant_id: str, webhook_id: str) -> WebhookInfo:
        async with self._db.read() as conn:
            row = await q.get_public(conn, tenant_id, webhook_id)
        if row is None:
            raise _not_found()
        return self._info(row)

    async def list(self, tenant_id: str) -> list[WebhookInfo]:
        async with self._db.read() as conn:
            rows = await q.list_public(conn, tenant_id)
        return [self._info(r) for r in rows]

    async def delete(self, tenant_id: str, webhook_id: str) -> None:
        """Remove an endpoint; what was still queued for it is dropped."""
        async with self._db.write() as conn:
            if not await q.delete_webhook(conn, tenant_id, webhook_id):
                raise _not_found()
        log.info("webhook deleted", extra={"tenant": tenant_id, "webhook": webhook_id})

    async def rotate(self, tenant_id: str, webhook_id: str) -> tuple[str, float]:
        """A new signing secret; the current one keeps signing too until the returned time.

        Rotating again within the overlap retires the older secret at once:
        only the two newest ever sign.
        """
        key = os.urandom(SECRET_BYTES)
        async with self._db.write() as conn:
            row = await q.get_sealed(conn, tenant_id, webhook_id)
            if row is None:
                raise _not_found()
            dek = self._vault.unwrap_data_key(
                row.data_key, tenant_id=tenant_id, credential_id=webhook_id
            )
            current = self._vault.open_field(
                dek, row.secret, tenant_id=tenant_id, credential_id=webhook_id, field=_SEAL_CURRENT
            )
            until = self._clock() + ROTATION_OVERLAP
            await q.update_webhook(
                conn,
                tenant_id,
                webhook_id,
                secret=self._seal(tenant_id, webhook_id, dek, _SEAL_CURRENT, key),
                previous_secret=self._seal(tenant_id, webhook_id, dek, _SEAL_PREVIOUS, current),
                previous_until=until,
            )
        log.info("webhook secret rotated", extra={"tenant": tenant_id, "webhook": webhook_id})
        return encode_secret(key), until

    async def enable(self, tenant_id: str, webhook_id: str) -> WebhookInfo:
        """Turn an endpoint back on (after a 410 disabled it); events queue again from now."""
        async with self._db.write() as conn:
            if not await q.update_webhook(
                conn, tenant_id, webhook_id, enabled=True, disabled_reason=None
            ):
                raise _not_found()
            row = await q.get_public(conn, tenant_id, webhook_id)
        log.info("webhook enabled", extra={"tenant": tenant_id, "webhook": webhook_id})
        return self._info(row)

    # -- the delivery worker --------------------------------------------------------

    def wake(self) -> None:
        """Deliveries were queued: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """The delivery worker: runs until cancelled."""
        session = aiohttp.ClientSession(
            connector=netguard.guarded_connector(
                allow_private=self._allow_private, resolver=self._resolver, limit=IN_FLIGHT
            ),
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": USER_AGENT},
        )
        in_flight: set[asyncio.Task[None]] = set()
        leased: set[str] = set()  # claimed, and no outcome recorded yet
        try:
            last_look = 0.0
            while not self._stopping.is_set():
                room = IN_FLIGHT - len(in_flight)
                if room > 0:
                    # Under a burst every commit wakes the worker: look at most
                    # every MIN_GAP seconds, so a burst costs a few reads, not one each.
                    await asyncio.sleep(max(0.0, last_look + MIN_GAP - time.monotonic()))
                    last_look = time.monotonic()
                    self._wake.clear()
                    for job in await self._claim(room):
                        leased.add(job.id)
                        task = asyncio.create_task(self._attempt(session, job, leased))
                        in_flight.add(task)
                        task.add_done_callback(in_flight.discard)
                # Look again when woken (if there is room), when an attempt ends, or at the poll.
                woken = asyncio.create_task(self._wake.wait())
                waits = {*in_flight, woken} if len(in_flight) < IN_FLIGHT else set(in_flight)
                try:
                    await asyncio.wait(waits, timeout=self._poll, return_when="FIRST_COMPLETED")
                finally:
                    woken.cancel()
            # Stopping: the attempts under way finish (each is bounded by the timeout).
            if in_flight:
                await asyncio.wait(in_flight, timeout=self._timeout + 1)
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            await self._release(leased)
            await session.close()

    def stop(self) -> None:
        """Take no new deliveries; :meth:`run` returns once the attempts under way end."""
        self._stopping.set()
        self._wake.set()

    async def close(self) -> None:
        """Nothing to let go: :meth:`run` closes its HTTP session when it ends."""

    async def _claim(self, room: int) -> Sequence[_Job]:
        now = self._clock()
        try:
            async with self._db.read() as conn:
                if not await q.any_due(conn, now):
                    return []
            async with self._db.write() as conn:
                rows = await q.claim(conn, now, lease=LEASE, limit=room)
        except Exception:
            log.exception("cannot read the webhook outbox; trying again")
            return []
        return [
            _Job(
                id=r.id,
                webhook_id=r.webhook_id,
                tenant_id=r.tenant_id,
                event=r.event,
                body=r.body,
                created_at=r.created_at,
                attempt=int(r.attempts),
                url=r.url,
                enabled=bool(r.enabled),
                data_key=r.data_key,
                secret=r.secret,
                previous_secret=r.previous_secret,
                previous_until=r.previous_until,
            )
            for r in rows
        ]

    async def _release(self, leased: set[str]) -> None:
        """On shutdown, give back the leases of attempts cut short, so they go out at once."""
        if not leased:
            return
        try:
            async with self._db.write() as conn:
                await q.release(conn, sorted(leased))
        except Exception:
            log.warning(
                "could not release webhook leases; they lapse by themselves",
                extra={"count": len(leased), "lease_seconds": LEASE},
            )

    async def _attempt(self, session: aiohttp.ClientSession, job: _Job, leased: set[str]) -> None:
        try:
            await self._deliver(session, job)
        except Exception:
            # The lease lapses and the attempt is made again.
            log.exception(
                "a webhook delivery failed unexpectedly",
                extra={"webhook": job.webhook_id, "delivery": job.id, "attempt": job.attempt},
            )
        leased.discard(job.id)

    def _signing_keys(self, job: _Job, now: float) -> Sequence[bytes]:
        dek = self._vault.unwrap_data_key(
            job.data_key, tenant_id=job.tenant_id, credential_id=job.webhook_id
        )
        keys = [
            self._vault.open_field(
                dek,
                job.secret,
                tenant_id=job.tenant_id,
                credential_id=job.webhook_id,
                field=_SEAL_CURRENT,
            )
        ]
        if job.previous_secret is not None and (job.previous_until or 0.0) > now:
            keys.append(
                self._vault.open_field(
                    dek,
                    job.previous_secret,
                    tenant_id=job.tenant_id,
                    credential_id=job.webhook_id,
                    field=_SEAL_PREVIOUS,
                )
            )
        return keys

    async def _deliver(self, session: aiohttp.ClientSession, job: _Job) -> None:
        if not job.enabled:  # disabled after the event was queued
            async with self._db.write() as conn:
                await q.delivered(conn, job.id)
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
                await q.delivered(conn, job.id)
            return
        if status == 410:
            reason = "the endpoint answered 410 Gone"
            async with self._db.write() as conn:
                await q.disable(conn, job.webhook_id, reason=reason)
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
        now = self._clock()
        at = now + self._delay(job.attempt)
        if job.attempt >= MAX_ATTEMPTS or at - job.created_at > GIVE_UP_AFTER:
            async with self._db.write() as conn:
                await q.delivered(conn, job.id)
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
            await q.retry_later(conn, job.id, at=at, status=status, error=error)

    def _delay(self, attempt: int) -> float:
        """Seconds before the next attempt: full jitter under a growing ceiling.

        The draw is kept above a tenth of the ceiling so a retry never follows
        its failure at once.
        """
        ceiling = self._retry_delays[min(attempt, len(self._retry_delays)) - 1]
        return self._random.uniform(ceiling / 10, ceiling)

    async def _send(
        self, session: aiohttp.ClientSession, job: _Job, keys: Sequence[bytes]
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
