"""Forwarding: a copy of each message reaching a credential, sent to a person.

Rules are per credential: ``email`` (sent through ``OTPGATE_SMTP_RELAY``) or
``sms`` (Twilio's Messages API).  The inbound transaction that stores a
message also queues one sealed copy per rule (``forward_outbox``), so a copy
exists exactly when the message was acknowledged; it is sent afterwards by
:meth:`ForwardService.run`, never inside the SMTP ``DATA`` step.

A copy is never sent twice.  An attempt is claimed with a lease and, just
before the step that cannot be taken back (the mail's ``DATA``, the
Messages API ``POST``), marked ``sending`` in its own commit.  If the process
dies after that mark, the copy is not retried: its rule shows ``unknown``.
Everything that fails before the mark, or fails with a reply that proves the
copy was not taken (an SMTP 4xx, a refused connection), is retried with
exponential back-off and full jitter, across restarts, for up to a day.  A
sent or abandoned copy is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib

from .. import ids
from ..errors import Conflict, Invalid, NotFound
from ..netguard import check_url
from ..store import credentials as cq
from ..store import forwards as q
from ..store import signals
from ..store.db import Database
from ..validation import is_e164, split_mail_address
from ..vault import Vault
from .numbers import ProviderError, SmsSender

log = logging.getLogger("otpgate.forwards")

#: Rules one credential may have.
MAX_RULES = 10
#: Seconds a claimed attempt is held before another worker may take it.
LEASE = 120.0
#: Copies sent at once.
CONCURRENCY = 4
#: Attempts, and the age in seconds, after which a copy is given up.
MAX_ATTEMPTS = 15
MAX_AGE = 24 * 3600.0
#: Seconds between looks for copies a crashed sender left marked as sending.
RECOVERY_EVERY = 5.0
#: Seconds to wait for the relay or Twilio.
TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class ForwardInfo:
    id: str
    credential_id: str
    channel: str
    to: str
    created_at: float
    last_status: str | None
    last_error: str | None
    last_attempt_at: float | None
    pending: int = 0


class NotSent(Exception):
    """The copy was certainly not taken; ``retry`` says whether trying again can help."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class Uncertain(Exception):
    """The copy may or may not have been taken; it is not sent again."""


class LostLease(Exception):
    """The attempt outlived its lease and another worker took the copy over."""


class ForwardService:
    def __init__(
        self,
        db: Database,
        vault: Vault,
        *,
        relay: str | None,
        mail_from: str,
        sms: SmsSender | None,
        sms_from: str | None,
        allow_private: bool = False,
        routes_changed: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._vault = vault
        # A credential's rules travel with its cached route: see CredentialService.
        self._routes_changed = routes_changed
        self._relay = relay
        self._mail_from = mail_from
        self._sms = sms
        self._sms_from = sms_from
        self._allow_private = allow_private
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        #: First retry delay in seconds; later ones double, up to an hour.
        self.retry_base = 5.0
        #: Seconds between looks at the outbox when nothing wakes the worker.
        self.poll = 1.0

    # -- rules -------------------------------------------------------------------

    async def create(self, tenant_id: str, cred_id: str, *, channel: str, to: str) -> ForwardInfo:
        async with self._db.read() as conn:  # another tenant's: 404 before anything else
            if await cq.get_sealed(conn, tenant_id, cred_id) is None:
                raise NotFound("no such credential", code="not_found")
        to = self._check_target(channel, to.strip())
        forward_id = ids.new_id(ids.FORWARD)
        at = self._clock()
        async with self._db.write() as conn:
            if await cq.get_sealed(conn, tenant_id, cred_id) is None:
                raise NotFound("no such credential", code="not_found")
            if await q.count_forwards(conn, cred_id) >= MAX_RULES:
                raise Conflict(f"a credential has at most {MAX_RULES} forwarding rules")
            await q.insert_forward(
                conn,
                id=forward_id,
                tenant_id=tenant_id,
                credential_id=cred_id,
                channel=channel,
                target=to,
                created_at=at,
            )
            await signals.routes_changed(conn)
        self._routes_changed()
        log.info(
            "forwarding rule created",
            extra={"tenant": tenant_id, "credential": cred_id, "channel": channel},
        )
        return ForwardInfo(forward_id, cred_id, channel, to, at, None, None, None)

    async def list(self, tenant_id: str, cred_id: str) -> list[ForwardInfo]:
        async with self._db.read() as conn:
            if await cq.get_sealed(conn, tenant_id, cred_id) is None:
                raise NotFound("no such credential", code="not_found")
            rows = await q.list_forwards(conn, tenant_id, cred_id)
        return [_info(r, r.pending) for r in rows]

    async def get(self, tenant_id: str, cred_id: str, forward_id: str) -> ForwardInfo:
        async with self._db.read() as conn:
            row = await q.get_forward(conn, tenant_id, cred_id, forward_id)
        if row is None:
            raise NotFound("no such forwarding rule for this credential", code="not_found")
        return _info(row, 0)

    async def delete(self, tenant_id: str, cred_id: str, forward_id: str) -> None:
        async with self._db.write() as conn:
            if not await q.delete_forward(conn, tenant_id, cred_id, forward_id):
                raise NotFound("no such forwarding rule for this credential", code="not_found")
            await signals.routes_changed(conn)
        self._routes_changed()

    def _check_target(self, channel: str, to: str) -> str:
        if channel == "sms":
            if not is_e164(to):
                raise Invalid("'to' must be a phone number in E.164 form, such as +14155550100")
            if self._sms is None:
                raise Invalid(
                    "SMS forwards need Twilio: set OTPGATE_TWILIO_ACCOUNT_SID and "
                    "OTPGATE_TWILIO_AUTH_TOKEN",
                    code="sms_not_configured",
                )
            return to
        if channel != "email":
            raise Invalid("'channel' must be email or sms")
        check_email(to, allow_private=self._allow_private)
        if self._relay is None:
            raise Invalid(
                "email forwards need a relay: set OTPGATE_SMTP_RELAY", code="relay_not_configured"
            )
        return to

    # -- the sender ----------------------------------------------------------------

    def wake(self) -> None:
        """Copies were queued: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Send due copies until cancelled."""
        running: set[asyncio.Task[None]] = set()
        next_recovery = 0.0
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                if time.monotonic() >= next_recovery:  # a crashed sender's leftovers
                    await self._abandon_interrupted()
                    next_recovery = time.monotonic() + RECOVERY_EVERY
                free = CONCURRENCY - len(running)
                if free > 0:
                    async with self._db.read() as conn:
                        due = await q.due(conn, self._clock(), free)
                    for copy_id in due:
                        task = asyncio.create_task(self._attempt(copy_id))
                        running.add(task)
                        task.add_done_callback(running.discard)
            except asyncio.CancelledError:
                for task in running:
                    task.cancel()
                raise
            except Exception:
                log.exception("the forward outbox could not be read; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)
        # Stopping: the copies under way finish (a cut-off DATA would leave a copy
        # that is never sent, to be safe from duplicates); each is bounded by TIMEOUT.
        if running:
            await asyncio.wait(running, timeout=2 * TIMEOUT + 1)

    def stop(self) -> None:
        """Take no new copies; :meth:`run` returns once the attempts under way end."""
        self._stopping.set()
        self._wake.set()

    async def _abandon_interrupted(self) -> None:
        now = self._clock()
        async with self._db.read() as conn:
            rows = await q.interrupted(conn, now, 100)
        for copy_id, forward_id in rows:
            async with self._db.write() as conn:
                await q.remove_copy(conn, copy_id)
                await q.set_status(
                    conn,
                    forward_id,
                    "unknown",
                    "the gateway stopped while sending; not sent again, to avoid a duplicate",
                    now,
                )
            log.warning("a forward was interrupted while sending", extra={"forward": forward_id})

    async def _attempt(self, copy_id: str) -> None:
        now = self._clock()
        async with self._db.write() as conn:
            row = await q.claim(conn, copy_id, now, now + LEASE)
        if row is None:
            return  # another worker took it
        try:
            await self._send(row)
        except LostLease:
            log.warning("a forward attempt outlived its lease", extra={"forward": row.forward_id})
        except NotSent as exc:
            await self._failed(row, str(exc), retry=exc.retry)
        except Uncertain as exc:
            await self._finish(row, "unknown", str(exc))
        except Exception:
            log.exception("a forward failed unexpectedly", extra={"forward": row.forward_id})
            await self._failed(row, "internal error", retry=True)
        else:
            await self._finish(row, "sent", None)

    async def _send(self, row: Any) -> None:
        copy = self._open(row)
        if row.channel == "email":
            await self._send_mail(row, copy)
        else:
            await self._send_text(row, copy)

    def _open(self, row: Any) -> dict[str, Any]:
        raw = self._vault.open_field_under(
            row.data_key,
            row.payload,
            tenant_id=row.tenant_id,
            credential_id=row.credential_id,
            field=f"forward:{row.id}",
        )
        copy: dict[str, Any] = json.loads(raw)
        return copy

    async def _mark_sending(self, row: Any) -> None:
        async with self._db.write() as conn:
            if not await q.mark_sending(conn, row.id, self._clock() + LEASE):
                raise LostLease

    async def _send_mail(self, row: Any, copy: dict[str, Any]) -> None:
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
        message = self._mail(row, copy)
        try:
            await client.connect()
            if relay.username:
                await client.login(unquote(relay.username), unquote(relay.password or ""))
            await client.mail(self._mail_from)
            await client.rcpt(row.target)
        except aiosmtplib.SMTPResponseException as exc:
            raise NotSent(f"the relay refused: {exc.code}", retry=exc.code < 500) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            reason = f"the relay could not be reached: {type(exc).__name__}"
            raise NotSent(reason, retry=True) from None
        try:
            await self._mark_sending(row)
            try:
                await client.data(message.as_bytes())
            except aiosmtplib.SMTPResponseException as exc:
                # A reply to DATA: the relay says it did not take the mail.
                await self._unmark(row)
                raise NotSent(f"the relay refused: {exc.code}", retry=exc.code < 500) from None
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise Uncertain(
                    f"the connection failed during DATA ({type(exc).__name__})"
                ) from None
        finally:
            with contextlib.suppress(Exception):
                await client.quit()
            client.close()

    def _mail(self, row: Any, copy: dict[str, Any]) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self._mail_from
        msg["To"] = row.target
        subject = copy.get("subject") or f"text from {copy.get('sender', '')}"
        msg["Subject"] = _one_line(f"[otpgate] {row.name}: {subject}")[:250]
        msg["Date"] = formatdate(localtime=False)
        # Stable across attempts: a receiving system can tell a repeat.
        msg["Message-ID"] = f"<{row.id}@{self._mail_from.rpartition('@')[2]}>"
        msg["Auto-Submitted"] = "auto-forwarded"
        received = datetime.fromtimestamp(copy.get("received_at", row.created_at), UTC)
        msg.set_content(
            f"A message for {row.name} reached otpgate.\n\n"
            f"From: {copy.get('sender', '')}\n"
            f"Channel: {copy.get('channel', '')}\n"
            f"Received: {received.isoformat(timespec='seconds')}\n\n"
            f"{copy.get('text', '')}\n"
        )
        return msg

    async def _send_text(self, row: Any, copy: dict[str, Any]) -> None:
        if self._sms is None:
            raise NotSent("Twilio is not configured", retry=False)
        sender = self._sms_from or row.phone_number
        if sender is None:
            raise NotSent(
                "no number to send from: set OTPGATE_TWILIO_SMS_FROM or give the "
                "credential a phone number",
                retry=False,
            )
        body = f"{row.name}: {copy.get('text', '') or copy.get('subject', '')}"[:1600]
        await self._mark_sending(row)
        try:
            await self._sms.send_sms(to=row.target, from_=sender, body=body)
        except ProviderError as exc:
            if not exc.retry:
                raise NotSent(str(exc), retry=False) from None
            raise Uncertain(f"Twilio did not answer clearly: {exc}") from None

    async def _unmark(self, row: Any) -> None:
        async with self._db.write() as conn:
            await q.reschedule(conn, row.id, self._clock(), "")

    async def _failed(self, row: Any, error: str, *, retry: bool) -> None:
        now = self._clock()
        if not retry or row.attempts >= MAX_ATTEMPTS or now - row.created_at > MAX_AGE:
            log.warning(
                "a forward was given up",
                extra={"forward": row.forward_id, "attempts": row.attempts, "error": error},
            )
            await self._finish(row, "failed", error)
            return
        delay = min(3600.0, self.retry_base * 2 ** (row.attempts - 1))
        delay = random.uniform(delay / 2, delay)  # noqa: S311 - jitter, not secrecy
        async with self._db.write() as conn:
            await q.reschedule(conn, row.id, now + delay, error[:300])
            await q.set_status(conn, row.forward_id, "retrying", error[:300], now)
        log.info(
            "a forward will be retried",
            extra={"forward": row.forward_id, "attempt": row.attempts, "error": error},
        )

    async def _finish(self, row: Any, status: str, error: str | None) -> None:
        now = self._clock()
        async with self._db.write() as conn:
            await q.remove_copy(conn, row.id)
            await q.set_status(conn, row.forward_id, status, error and error[:300], now)
        if status == "sent":
            log.info("a forward was sent", extra={"forward": row.forward_id})
        elif status == "unknown":
            log.warning(
                "a forward may or may not have been sent; not sent again",
                extra={"forward": row.forward_id, "error": error},
            )


def check_email(address: str, *, allow_private: bool) -> str:
    """Check an email address's syntax, and that its domain is not an internal one."""
    parts = split_mail_address(address)
    if parts is None:
        raise Invalid("'to' is not an email address such as person@example.com")
    domain = parts[1]
    if domain.startswith("["):
        raise Invalid("'to' must name a mail domain, not an address literal")
    if "." not in domain and not allow_private:
        raise Invalid("'to' must be an address at a full domain name, such as example.com")
    check_url(f"http://{domain}/", allow_private=allow_private)
    return address


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _info(row: Any, pending: int) -> ForwardInfo:
    return ForwardInfo(
        row.id,
        row.credential_id,
        row.channel,
        row.target,
        row.created_at,
        row.last_status,
        row.last_error,
        row.last_attempt_at,
        pending,
    )
