"""Sending forwarded copies: the sender that the forward :class:`~.outbox.Outbox` runs.

The inbound transaction that stores a message also queues one sealed copy
per forwarding rule (``forward_outbox``), so a copy exists exactly when the
message was acknowledged; it is sent afterwards, never inside the SMTP
``DATA`` step: by mail through ``OTPGATE_SMTP_RELAY``, or as a text through
Twilio's Messages API.

A copy is never sent twice.  An attempt is claimed with a lease and, just
before the step that cannot be taken back (the mail's ``DATA``, the
Messages API ``POST``), marked ``sending`` in its own commit.  If the process
dies after that mark, the copy is not retried: :meth:`ForwardDelivery.recover`
finds it once its lease lapses and its rule shows ``unknown``.  Everything
that fails before the mark, or fails with a reply that proves the copy was
not taken (an SMTP 4xx, a refused connection), is retried with exponential
back-off and full jitter, across restarts, for up to a day.  A sent or
abandoned copy is deleted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib

from ..store import forwards as forward_rows
from ..store.db import Database
from ..vault import Vault
from .numbers import ProviderError, SmsSender
from .outbox import Attempt, Backoff, Sender, doubling

log = logging.getLogger("otpgate.forwards")

#: Seconds a claimed attempt is held before another worker may take it.
LEASE = 120.0
#: Copies sent at once.
IN_FLIGHT = 4
#: Attempts, and the age in seconds, after which a copy is given up.
MAX_ATTEMPTS = 15
MAX_AGE = 24 * 3600.0
#: First retry delay in seconds; later ones double, up to an hour.
RETRY_BASE = 5.0
#: Seconds to wait for the relay or Twilio.
TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class LeasedCopy:
    """One claimed copy and what is needed to send it (its content still sealed)."""

    id: str
    forward_id: str
    tenant_id: str
    credential_id: str
    payload: bytes
    #: The number of this attempt, counted when it was claimed.
    attempt: int
    created_at: float
    channel: str
    target: str
    #: The credential's name, its data key (which sealed the copy) and its number.
    name: str
    data_key: bytes
    phone_number: str | None


class NotSent(Exception):
    """The copy was certainly not taken; ``retry`` says whether trying again can help."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class Uncertain(Exception):
    """The copy may or may not have been taken; it is not sent again."""


class LostLease(Exception):
    """The attempt outlived its lease and another worker took the copy over."""


class ForwardDelivery(Sender[LeasedCopy]):
    name = "forwards"
    in_flight = IN_FLIGHT
    lease = LEASE
    # Connecting and DATA are each bounded by TIMEOUT: a cut-off DATA would
    # leave a copy that is never sent (to be safe from duplicates).
    drain_timeout = 2 * TIMEOUT + 1

    def __init__(
        self,
        db: Database,
        vault: Vault,
        *,
        relay: str | None,
        mail_from: str,
        sms: SmsSender | None,
        sms_from: str | None,
        clock: Callable[[], float] = time.time,
        retry_base: float = RETRY_BASE,
    ) -> None:
        self._db = db
        self._vault = vault
        self._relay = relay
        self._mail_from = mail_from
        self._sms = sms
        self._sms_from = sms_from
        self._clock = clock
        #: First retry delay in seconds; later ones double, up to an hour.
        self._retry_base = retry_base

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[Attempt[LeasedCopy]]:
        yield self._attempt

    async def claim(self, room: int) -> Sequence[LeasedCopy]:
        now = self._clock()
        async with self._db.read() as conn:
            if not await forward_rows.any_due(conn, now):
                return []
        async with self._db.write() as conn:
            rows = await forward_rows.claim(conn, now, lease=LEASE, limit=room)
        return [_leased(r) for r in rows]

    async def release(self, ids: Sequence[str]) -> None:
        async with self._db.write() as conn:
            await forward_rows.release(conn, ids)

    async def recover(self) -> None:
        """Give up the copies a sender that died left marked as sending: never sent twice."""
        now = self._clock()
        async with self._db.read() as conn:
            rows = await forward_rows.interrupted(conn, now, 100)
        for copy_id, forward_id in rows:
            async with self._db.write() as conn:
                await forward_rows.remove_copy(conn, copy_id)
                await forward_rows.set_status(
                    conn,
                    forward_id,
                    "unknown",
                    "the gateway stopped while sending; not sent again, to avoid a duplicate",
                    now,
                )
            log.warning("a forward was interrupted while sending", extra={"forward": forward_id})

    async def _attempt(self, copy: LeasedCopy) -> None:
        try:
            await self._send(copy)
        except LostLease:
            log.warning("a forward attempt outlived its lease", extra={"forward": copy.forward_id})
        except NotSent as exc:
            await self._failed(copy, str(exc), retry=exc.retry)
        except Uncertain as exc:
            await self._finish(copy, "unknown", str(exc))
        except Exception:
            log.exception("a forward failed unexpectedly", extra={"forward": copy.forward_id})
            await self._failed(copy, "internal error", retry=True)
        else:
            await self._finish(copy, "sent", None)

    async def _send(self, copy: LeasedCopy) -> None:
        content = self._open(copy)
        if copy.channel == "email":
            await self._send_mail(copy, content)
        else:
            await self._send_text(copy, content)

    def _open(self, copy: LeasedCopy) -> dict[str, Any]:
        raw = self._vault.open_field_under(
            copy.data_key,
            copy.payload,
            tenant_id=copy.tenant_id,
            credential_id=copy.credential_id,
            field=f"forward:{copy.id}",
        )
        content: dict[str, Any] = json.loads(raw)
        return content

    async def _mark_sending(self, copy: LeasedCopy) -> None:
        async with self._db.write() as conn:
            if not await forward_rows.mark_sending(conn, copy.id, self._clock() + LEASE):
                raise LostLease

    async def _send_mail(self, copy: LeasedCopy, content: dict[str, Any]) -> None:
        if self._relay is None:
            raise NotSent("OTPGATE_SMTP_RELAY is not set", retry=False)
        relay = urlsplit(self._relay)
        tls = relay.scheme == "smtps"
        client = aiosmtplib.SMTP(
            hostname=relay.hostname,
            port=relay.port or (465 if tls else 25),
            use_tls=tls,
            timeout=TIMEOUT,
        )
        message = self._mail(copy, content)
        try:
            await client.connect()
            if relay.username:
                await client.login(unquote(relay.username), unquote(relay.password or ""))
            await client.mail(self._mail_from)
            await client.rcpt(copy.target)
        except aiosmtplib.SMTPResponseException as exc:
            raise NotSent(f"the relay refused: {exc.code}", retry=exc.code < 500) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            reason = f"the relay could not be reached: {type(exc).__name__}"
            raise NotSent(reason, retry=True) from None
        try:
            await self._mark_sending(copy)
            try:
                await client.data(message.as_bytes())
            except aiosmtplib.SMTPResponseException as exc:
                # A reply to DATA: the relay says it did not take the mail.
                await self._unmark(copy)
                raise NotSent(f"the relay refused: {exc.code}", retry=exc.code < 500) from None
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise Uncertain(
                    f"the connection failed during DATA ({type(exc).__name__})"
                ) from None
        finally:
            with contextlib.suppress(Exception):
                await client.quit()
            client.close()

    def _mail(self, copy: LeasedCopy, content: dict[str, Any]) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self._mail_from
        msg["To"] = copy.target
        subject = content.get("subject") or f"text from {content.get('sender', '')}"
        msg["Subject"] = _one_line(f"[otpgate] {copy.name}: {subject}")[:250]
        msg["Date"] = formatdate(localtime=False)
        # Stable across attempts: a receiving system can tell a repeat.
        msg["Message-ID"] = f"<{copy.id}@{self._mail_from.rpartition('@')[2]}>"
        msg["Auto-Submitted"] = "auto-forwarded"
        received = datetime.fromtimestamp(content.get("received_at", copy.created_at), UTC)
        msg.set_content(
            f"A message for {copy.name} reached otpgate.\n\n"
            f"From: {content.get('sender', '')}\n"
            f"Channel: {content.get('channel', '')}\n"
            f"Received: {received.isoformat(timespec='seconds')}\n\n"
            f"{content.get('text', '')}\n"
        )
        return msg

    async def _send_text(self, copy: LeasedCopy, content: dict[str, Any]) -> None:
        if self._sms is None:
            raise NotSent("Twilio is not configured", retry=False)
        sender = self._sms_from or copy.phone_number
        if sender is None:
            raise NotSent(
                "no number to send from: set OTPGATE_TWILIO_SMS_FROM or give the "
                "credential a phone number",
                retry=False,
            )
        body = f"{copy.name}: {content.get('text', '') or content.get('subject', '')}"[:1600]
        await self._mark_sending(copy)
        try:
            await self._sms.send_sms(to=copy.target, from_=sender, body=body)
        except ProviderError as exc:
            if not exc.retry:
                raise NotSent(str(exc), retry=False) from None
            raise Uncertain(f"Twilio did not answer clearly: {exc}") from None

    async def _unmark(self, copy: LeasedCopy) -> None:
        async with self._db.write() as conn:
            await forward_rows.reschedule(conn, copy.id, self._clock(), "")

    def _backoff(self) -> Backoff:
        return Backoff(
            doubling(self._retry_base, cap=3600.0, count=MAX_ATTEMPTS),
            floor=0.5,
            max_attempts=MAX_ATTEMPTS,
            max_age=MAX_AGE,
        )

    async def _failed(self, copy: LeasedCopy, error: str, *, retry: bool) -> None:
        now = self._clock()
        at = self._backoff().next_attempt(copy.attempt, copy.created_at, now) if retry else None
        if at is None:
            log.warning(
                "a forward was given up",
                extra={"forward": copy.forward_id, "attempts": copy.attempt, "error": error},
            )
            await self._finish(copy, "failed", error)
            return
        async with self._db.write() as conn:
            await forward_rows.reschedule(conn, copy.id, at, error[:300])
            await forward_rows.set_status(conn, copy.forward_id, "retrying", error[:300], now)
        log.info(
            "a forward will be retried",
            extra={"forward": copy.forward_id, "attempt": copy.attempt, "error": error},
        )

    async def _finish(self, copy: LeasedCopy, status: str, error: str | None) -> None:
        now = self._clock()
        async with self._db.write() as conn:
            await forward_rows.remove_copy(conn, copy.id)
            await forward_rows.set_status(conn, copy.forward_id, status, error and error[:300], now)
        if status == "sent":
            log.info("a forward was sent", extra={"forward": copy.forward_id})
        elif status == "unknown":
            log.warning(
                "a forward may or may not have been sent; not sent again",
                extra={"forward": copy.forward_id, "error": error},
            )


def _leased(row: Any) -> LeasedCopy:
    return LeasedCopy(
        id=row.id,
        forward_id=row.forward_id,
        tenant_id=row.tenant_id,
        credential_id=row.credential_id,
        payload=row.payload,
        attempt=int(row.attempts),
        created_at=row.created_at,
        channel=row.channel,
        target=row.target,
        name=row.name,
        data_key=row.data_key,
        phone_number=row.phone_number,
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())
