"""Forwarding rules: a copy of each message reaching a credential, sent to a person.

Rules are per credential: ``email`` (sent through ``OTPGATE_SMTP_RELAY``) or
``sms`` (Twilio's Messages API), up to ``MAX_RULES`` each; a target is
checked when the rule is made.  A rule travels with its credential's cached
route, so the inbound transaction that stores a message also queues one
sealed copy per rule; :mod:`gateway.services.forward_delivery` sends them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import ids
from ..errors import Conflict, Invalid, NotFound
from ..netguard import check_url
from ..store import credentials as credential_rows
from ..store import forwards as forward_rows
from ..store import signals
from ..store.db import Database
from ..validation import is_e164, split_mail_address
from .numbers import SmsSender

log = logging.getLogger("otpgate.forwards")

#: Rules one credential may have.
MAX_RULES = 10


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


class ForwardRules:
    """Create, list, show and delete a credential's forwarding rules.

    *relay* and *sms* say which channels can be sent at all: a rule for a
    channel that is not configured is refused when it is made.
    """

    def __init__(
        self,
        db: Database,
        *,
        relay: str | None,
        sms: SmsSender | None,
        allow_private: bool = False,
        routes_changed: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        # A credential's rules travel with its cached route: see CredentialService.
        self._routes_changed = routes_changed
        self._relay = relay
        self._sms = sms
        self._allow_private = allow_private
        self._clock = clock

    async def create(self, tenant_id: str, cred_id: str, *, channel: str, to: str) -> ForwardInfo:
        async with self._db.read() as conn:  # another tenant's: 404 before anything else
            if await credential_rows.get_sealed(conn, tenant_id, cred_id) is None:
                raise NotFound("no such credential", code="not_found")
        to = self._check_target(channel, to.strip())
        forward_id = ids.new_id(ids.FORWARD)
        at = self._clock()
        async with self._db.write() as conn:
            if await credential_rows.get_sealed(conn, tenant_id, cred_id) is None:
                raise NotFound("no such credential", code="not_found")
            if await forward_rows.count_forwards(conn, cred_id) >= MAX_RULES:
                raise Conflict(f"a credential has at most {MAX_RULES} forwarding rules")
            await forward_rows.insert_forward(
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
            if await credential_rows.get_sealed(conn, tenant_id, cred_id) is None:
                raise NotFound("no such credential", code="not_found")
            rows = await forward_rows.list_forwards(conn, tenant_id, cred_id)
        return [_info(r, r.pending) for r in rows]

    async def get(self, tenant_id: str, cred_id: str, forward_id: str) -> ForwardInfo:
        async with self._db.read() as conn:
            row = await forward_rows.get_forward(conn, tenant_id, cred_id, forward_id)
        if row is None:
            raise NotFound("no such forwarding rule for this credential", code="not_found")
        return _info(row, 0)

    async def delete(self, tenant_id: str, cred_id: str, forward_id: str) -> None:
        async with self._db.write() as conn:
            if not await forward_rows.delete_forward(conn, tenant_id, cred_id, forward_id):
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
