"""Inbound texts: from a Twilio number, or from a SIM in a phone running SMS Gateway for Android.

The SMS adapters (``sms/``) check each provider's signature and parse its
format; this service routes the text to a credential, applies the per-number
and per-sender rate limits, drops redeliveries of a message id already taken
and hands the text to :class:`~gateway.services.inbound.InboundService`,
which stores its code, forwards and events in one transaction.

Android devices are mapped to credentials by
:class:`~gateway.services.android.AndroidDevices`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..errors import RateLimited, TooLarge
from ..metrics import Metrics
from ..store import inbound as inbound_rows
from ..store.db import Database
from .inbound import (
    REJECTED,
    AlreadyStored,
    InboundService,
    Message,
    Offload,
    OffloadUnavailable,
    Route,
)
from .ratelimit import RateLimiter
from .spool import Spool

log = logging.getLogger("otpgate.sms")

TWILIO = "twilio"
ANDROID = "android"
DUPLICATE = "duplicate"
UNROUTED = "unrouted"

#: Longest text accepted (Twilio concatenates at most 1,600 characters).
MAX_TEXT = 1600
#: How long a provider's message id is remembered, for redeliveries.
SEEN_SECONDS = 3 * 24 * 3600
#: Message ids remembered in memory; the store's unique key covers the rest.
_RECENT = 50_000


class SmsService:
    def __init__(
        self,
        db: Database,
        inbound: InboundService,
        metrics: Metrics,
        *,
        rate_limit: int,
        spool: Spool,
        offload: Offload | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        #: Where a text waits while the store is away (Twilio does not retry).
        self.spool = spool
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

    def keep(self, provider: str, request: dict[str, Any]) -> None:
        """Keep a provider's request until the store is back (see :mod:`.spool`)."""
        self.spool.keep(provider, request)

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
        log.info(
            "accepted a text",
            extra={"provider": provider, "credential": route.credential_id, "outcome": outcome},
        )
        return outcome

    async def _store(self, message: Message, route: Route, seen: tuple[str, str]) -> list[str]:
        offload = self._offload
        if offload is not None and offload.running:
            try:
                return await offload.store(message, [route], seen)
            except OffloadUnavailable as exc:
                self._metrics.ingest_failures.inc("sms")
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

    async def sweep(self) -> int:
        """Forget message ids older than the redelivery window."""
        before = self._clock() - SEEN_SECONDS
        return await self._db.sweep(
            lambda conn: inbound_rows.any_seen_before(conn, before),
            lambda conn: inbound_rows.forget_seen(conn, before),
        )
