"""Inbound texts: from a Twilio number, or from a SIM in a phone running SMS Gateway for Android.

The SMS adapters (``sms/``) check each provider's signature and parse its
format; this service routes the text to a credential, applies the per-number
and per-sender rate limits, drops redeliveries of a message id already taken
and hands the text to :class:`~gateway.services.inbound.InboundService`,
which stores its code, forwards and events in one transaction.

Android devices are mapped to credentials here: a device (its ``deviceId``)
and optionally one SIM slot belong to one credential.  The device's signing
key is sealed with that credential's data key.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from .. import ids
from ..errors import Conflict, Invalid, NotFound, RateLimited, TooLarge
from ..metrics import Metrics
from ..store import credentials as credential_rows
from ..store import inbound as inbound_rows
from ..store import sms as sms_rows
from ..store.db import Database
from ..vault import Vault
from .inbound import (
    REJECTED,
    AlreadyStored,
    InboundService,
    Message,
    Offload,
    OffloadUnavailable,
    Route,
    route_from_row,
)
from .ratelimit import RateLimiter

log = logging.getLogger("otpgate.sms")

TWILIO = "twilio"
ANDROID = "android"
DUPLICATE = "duplicate"
UNROUTED = "unrouted"

#: Longest text accepted (Twilio concatenates at most 1,600 characters).
MAX_TEXT = 1600
#: Devices (or SIM slots) one credential may have.
MAX_DEVICES = 10
#: How long a provider's message id is remembered, for redeliveries.
SEEN_SECONDS = 3 * 24 * 3600
#: Message ids remembered in memory; the store's unique key covers the rest.
_RECENT = 50_000
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    id: str
    credential_id: str
    device_id: str
    sim_number: int | None
    created_at: float


@dataclass(frozen=True, slots=True)
class DeviceRoute:
    """One SIM mapping of a device: where its texts go and the key that signs them."""

    sim_number: int | None
    signing_key: bytes
    route: Route

    def __repr__(self) -> str:
        return f"DeviceRoute(sim_number={self.sim_number!r}, route={self.route!r})"


class SmsService:
    def __init__(
        self,
        db: Database,
        vault: Vault,
        inbound: InboundService,
        metrics: Metrics,
        *,
        rate_limit: int,
        offload: Offload | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._vault = vault
        self._inbound = inbound
        self._metrics = metrics
        self._per_receiver = RateLimiter(rate_limit)
        self._per_sender = RateLimiter(rate_limit)
        self._clock = clock
        #: Ids stored by this process lately (insertion-ordered; oldest dropped first).
        self._recent: dict[str, None] = {}
        #: The ingest worker, when one runs: texts are extracted, sealed and
        #: committed there, on another core, and here when it is unavailable.
        self._offload = offload

    async def route_for_number(self, phone: str) -> Route | None:
        return await self._inbound.route_for_phone(phone)

    async def accept(
        self,
        provider: str,
        message_id: str,
        *,
        receiver: str,
        route: Route | None,
        sender: str,
        text: str,
    ) -> str:
        """Store one text for *route*; its outcome, ``duplicate`` or ``unrouted``.

        Raises :class:`TooLarge` for a text over :data:`MAX_TEXT` characters,
        and :class:`RateLimited` when the receiving number or the sender sent
        too many texts in the last minute; nothing is stored then.
        """
        if len(text) > MAX_TEXT:
            raise TooLarge(f"the text is longer than {MAX_TEXT} characters")
        if route is None:
            self._metrics.messages.inc("sms", REJECTED)
            log.info("text for a number no credential owns", extra={"provider": provider})
            return UNROUTED
        if not self._per_receiver.allow(f"{provider}:{receiver}"):
            raise RateLimited("too many texts for this number; try again in a minute")
        if not self._per_sender.allow(f"{provider}:{receiver}:{sender}"):
            raise RateLimited("too many texts from this sender; try again in a minute")
        key = f"{provider}:{message_id}"
        if key in self._recent:
            return DUPLICATE
        message = Message(
            channel="sms", sender=sender, sender_domain="", subject="", text=text, html=""
        )
        seen = (provider, message_id)
        try:
            (outcome,) = await self._store(message, route, seen)
        except AlreadyStored:
            self._remember(key)
            return DUPLICATE
        self._remember(key)
        self._inbound.announce("sms", [route], [outcome])
        return outcome

    async def _store(self, message: Message, route: Route, seen: tuple[str, str]) -> list[str]:
        offload = self._offload
        if offload is not None and offload.running:
            try:
                return await offload.store(message, [route], seen)
            except OffloadUnavailable as exc:
                # Twilio does not retry a failed webhook, so the text is stored
                # here instead; if the worker did commit it, the message id's
                # unique key makes this a duplicate, not a second code.
                log.warning("storing a text in the gateway's process: %s", exc)
        return await self._inbound.store(message, [route], seen=seen)

    def _remember(self, key: str) -> None:
        """Note a stored id, so a quick redelivery is answered without touching the store."""
        if len(self._recent) >= _RECENT:
            for old in list(self._recent)[: _RECENT // 2]:
                del self._recent[old]
        self._recent[key] = None

    # -- Android devices --------------------------------------------------------

    async def device_routes(self, device_id: str) -> list[DeviceRoute]:
        """Every SIM mapping of *device_id*, with its signing key opened."""
        if not _DEVICE_ID.match(device_id):
            return []
        async with self._db.read() as conn:
            rows = await inbound_rows.devices(conn, device_id)
            found = []
            for row in rows:
                found.append((row, await inbound_rows.forward_ids(conn, row.id)))
        out = []
        for row, forwards in found:
            key = self._vault.open_field_under(
                row.data_key,
                row.signing_key,
                tenant_id=row.tenant_id,
                credential_id=row.id,
                field=f"device:{device_id}:{row.sim_number}",
            )
            out.append(DeviceRoute(row.sim_number, key, route_from_row(row, forwards)))
        return out

    async def add_device(
        self,
        tenant_id: str,
        cred_id: str,
        *,
        device_id: str,
        sim_number: int | None,
        signing_key: str | None,
    ) -> tuple[DeviceInfo, str]:
        """Map a device (or one of its SIM slots) to a credential; the info and the key."""
        if not _DEVICE_ID.match(device_id):
            raise Invalid("device_id must be 1 to 64 letters, digits or . _ : -")
        if sim_number is not None and not 1 <= sim_number <= 8:
            raise Invalid("sim_number must be from 1 to 8")
        if signing_key is None:
            signing_key = base64.urlsafe_b64encode(secrets.token_bytes(24)).decode()
        elif not 16 <= len(signing_key) <= 256 or not signing_key.isprintable():
            raise Invalid("signing_key must be 16 to 256 printable characters")
        row_id = ids.new_id(ids.SMS_DEVICE)
        at = self._clock()
        try:
            async with self._db.write() as conn:
                sealed = await credential_rows.get_sealed(conn, tenant_id, cred_id)
                if sealed is None:
                    raise NotFound("no such credential", code="not_found")
                if await sms_rows.count_devices(conn, cred_id) >= MAX_DEVICES:
                    raise Conflict(f"a credential has at most {MAX_DEVICES} devices")
                if await sms_rows.mapping_taken(conn, device_id, sim_number):
                    raise Conflict("this device (and SIM) already belongs to a credential")
                await sms_rows.insert_device(
                    conn,
                    id=row_id,
                    tenant_id=tenant_id,
                    credential_id=cred_id,
                    device_id=device_id,
                    sim_number=sim_number,
                    signing_key=self._vault.seal_field_under(
                        sealed[0],
                        signing_key.encode(),
                        tenant_id=tenant_id,
                        credential_id=cred_id,
                        field=f"device:{device_id}:{sim_number}",
                    ),
                    created_at=at,
                )
        except IntegrityError:
            raise Conflict("this device (and SIM) already belongs to a credential") from None
        log.info("sms device mapped", extra={"tenant": tenant_id, "credential": cred_id})
        return DeviceInfo(row_id, cred_id, device_id, sim_number, at), signing_key

    async def list_devices(self, tenant_id: str, cred_id: str) -> list[DeviceInfo]:
        async with self._db.read() as conn:
            if await credential_rows.get_sealed(conn, tenant_id, cred_id) is None:
                raise NotFound("no such credential", code="not_found")
            rows = await sms_rows.list_devices(conn, tenant_id, cred_id)
        return [_device(r) for r in rows]

    async def remove_device(self, tenant_id: str, cred_id: str, device_row: str) -> None:
        async with self._db.write() as conn:
            if not await sms_rows.delete_device(conn, tenant_id, cred_id, device_row):
                raise NotFound("no such device for this credential", code="not_found")

    async def sweep(self) -> int:
        """Forget message ids older than the redelivery window."""
        async with self._db.write() as conn:
            return await inbound_rows.forget_seen(conn, self._clock() - SEEN_SECONDS)


def pick_route(mappings: Sequence[DeviceRoute], sim_number: int | None) -> DeviceRoute | None:
    """The mapping for the SIM a text arrived on: an exact slot first, else the whole device."""
    for m in mappings:
        if sim_number is not None and m.sim_number == sim_number:
            return m
    for m in mappings:
        if m.sim_number is None:
            return m
    return None


def _device(row: Any) -> DeviceInfo:
    return DeviceInfo(row.id, row.credential_id, row.device_id, row.sim_number, row.created_at)
