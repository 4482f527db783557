"""Messages arriving for a credential (email or SMS): extract, seal, commit, wake.

The protocol adapters find the credentials a message is for with
``route_for_inbox`` / ``route_for_phone`` and hand it over: the SMTP listener
its raw bytes (:meth:`InboundService.accept_mail`), the SMS webhooks a decoded
:class:`Message` (:meth:`InboundService.accept`).  Either returns only once everything the
message causes is durably committed in one transaction (group commit shares
the disk sync between sessions): the sealed code and the sealed action link
(sign in, confirm, approve, reset), a sealed copy for each forwarding rule,
the ``code.received`` and ``link.received`` webhook events, ``code.unsolicited``
when nobody was signing in to the credential, the provider's message id for
deduplication, and the message counted for the charts of the web pages (the
typed rows of ``store.inbound``).  Message
bodies are stored only sealed, in a forward's copy, until it is sent.

``accept`` is :meth:`~InboundService.store` (extract, seal, commit) then
:meth:`~InboundService.announce` (count, wake); with the ingest worker, the
first half runs in the worker process.  The gateway and the worker each hold
one ``Extractor``, handed in by the composition root.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .. import events, ids
from ..errors import Invalid
from ..extraction.extractor import (
    CustomPattern,
    Decision,
    Extractor,
    Link,
    compile_custom_pattern,
    extract_with_pattern,
)
from ..extraction.mime import parse_message
from ..metrics import Metrics
from ..store import codes as code_rows
from ..store import inbound as inbound_rows
from ..store.codes import CodeRow
from ..store.counts import CountRow
from ..store.credentials import decode_senders
from ..store.db import Database
from ..store.inbound import EventRow, ForwardCopyRow, SeenRow, UnsolicitedRow
from ..timestamps import utc_day
from ..vault import Vault
from .forwarded import MAX_NESTING, attached_message
from .groupcommit import GroupCommitter
from .waiters import Bells

log = logging.getLogger("otpgate.inbound")

CODE = "code"
#: A message with a sign-in or confirmation link and no code.
LINK = "link"
NO_CODE = "no_code"
#: A message whose likeliest code was not clearly ahead of another: none handed out.
AMBIGUOUS = "ambiguous"
REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Route:
    """Where a message goes: one credential, with its extraction settings."""

    credential_id: str
    tenant_id: str
    data_key: bytes
    pattern: str | None
    allowed_senders: tuple[str, ...] | None
    #: Ids of the credential's forwarding rules.
    forwards: tuple[str, ...] = ()
    #: Whether a code or link nobody signs in for fires ``code.unsolicited``.
    report_unsolicited: bool = True

    def __repr__(self) -> str:
        return f"Route(credential_id={self.credential_id!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled for the ingest worker with every message: fields in order,
        # not the slower state dictionary dataclasses build for slots.
        return (Route, tuple(getattr(self, f) for f in self.__slots__))


@dataclass(frozen=True, slots=True)
class Message:
    """An inbound message, decoded.  Its repr never shows the content."""

    channel: str  # "email" or "sms"
    sender: str
    sender_domain: str
    subject: str
    text: str
    html: str = ""

    def __repr__(self) -> str:
        return (
            f"Message(channel={self.channel!r}, subject=<{len(self.subject)} chars>, "
            f"text=<{len(self.text)} chars>, html=<{len(self.html)} chars>)"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (Message, tuple(getattr(self, f) for f in self.__slots__))


class AlreadyStored(Exception):
    """A provider's message id that was stored before: a redelivery."""


class OffloadUnavailable(Exception):
    """The other process that stores messages is not running or failed."""


class Offload(Protocol):
    """Another process that runs :meth:`InboundService.store` (the ingest worker).

    ``store`` raises :class:`AlreadyStored` as the local one does, and
    :class:`OffloadUnavailable` when the message may not have been stored;
    ``ingest`` parses a raw mail first (:func:`message_from_mail`) and stores it.
    ``running`` is False once it has been closed on shutdown.
    """

    @property
    def running(self) -> bool: ...

    async def store(
        self, message: Message, routes: Sequence[Route], seen: tuple[str, str] | None
    ) -> list[str]: ...

    async def ingest(self, raw: bytes, mail_from: str, routes: Sequence[Route]) -> list[str]: ...


def message_from_mail(raw: bytes, mail_from: str) -> Message:
    """Parse a raw mail into a :class:`Message` (the From header's address wins).

    A mail forwarded as an attachment is read for the attached original's
    subject and body (:mod:`.forwarded`), but its sender stays the one who
    forwarded it: the original's From is content anyone can write into an
    attachment, unchecked by any MTA's SPF or DMARC, so it must not pass a
    credential's ``allowed_senders`` (list the forwarding address there).
    """
    mail = content = parse_message(raw)
    outer = raw
    for _ in range(MAX_NESTING):
        inner = attached_message(outer)
        if inner is None:
            break
        content, outer = parse_message(inner), inner
    sender = mail.sender or mail_from.lower()
    return Message(
        channel="email",
        sender=sender,
        sender_domain=mail.sender_domain or sender.rpartition("@")[2],
        subject=content.subject,
        text=content.text,
        html=content.html,
    )


#: RFC 5322's limit on a line of a mail, in characters, without the line ending.
RFC_LINE = 998


def has_long_line(raw: bytes) -> bool:
    """Whether a line of *raw* is longer than RFC 5322 allows (:data:`RFC_LINE`)."""
    return len(raw) > RFC_LINE and any(len(line) > RFC_LINE for line in raw.splitlines())


class RouteCache:
    """Routes found lately, by inbox or phone number: RCPT is the hottest query of a burst.

    A found route is trusted for :attr:`SECONDS`; :meth:`forget` drops them
    all at once when routes change (a credential's inbox, phone, extraction
    settings or forwarding rules), on this replica or, through the wake-up
    listener, on another.
    """

    SECONDS = 2.0
    SIZE = 10_000

    def __init__(self) -> None:
        self._routes: dict[str, tuple[float, Route]] = {}

    def get(self, key: str, now: float) -> Route | None:
        hit = self._routes.get(key)
        return hit[1] if hit is not None and hit[0] > now else None

    def put(self, key: str, route: Route, now: float) -> None:
        if len(self._routes) >= self.SIZE:
            self._routes.clear()
        self._routes[key] = (now + self.SECONDS, route)

    def forget(self) -> None:
        self._routes.clear()


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> CustomPattern | None:
    try:
        return compile_custom_pattern(pattern)
    except Invalid:
        return None  # validated when set; a pattern that no longer compiles finds nothing


def sender_allowed(domain: str, allowed: Sequence[str]) -> bool:
    """True when *domain* is one of *allowed* or a subdomain of one."""
    domain = domain.lower().rstrip(".")
    return any(domain == a or domain.endswith("." + a) for a in allowed)


class InboundService:
    def __init__(
        self,
        db: Database,
        vault: Vault,
        bells: Bells,
        metrics: Metrics,
        *,
        extractor: Extractor,
        code_ttl: int,
        routes: RouteCache | None = None,
        offload: Offload | None = None,
        forwards_queued: Callable[[], None] = lambda: None,
        events_queued: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._vault = vault
        self._bells = bells
        self._metrics = metrics
        self._extractor = extractor
        self._ttl = code_ttl
        self._clock = clock
        self._commit = GroupCommitter(db, inbound_rows.write)
        self._routes = RouteCache() if routes is None else routes
        #: Stores mail in another process (the ingest worker); None: in this one.
        self._offload = offload
        #: Called after a commit that queued forwarded copies / webhook events.
        self._forwards_queued = forwards_queued
        self._events_queued = events_queued

    async def route_for_inbox(self, local_part: str) -> Route | None:
        """The credential owning an inbox local part (``+tag`` already removed), or None.

        Found routes are cached for a couple of seconds (RCPT is the hottest
        query of a mail burst) and dropped at once when routes change, on
        this replica or another; an unknown inbox is never cached, so a new
        credential's inbox works at once.
        """
        return await self._cached("inbox:" + local_part.lower(), code_rows.route_by_inbox)

    async def route_for_phone(self, phone: str) -> Route | None:
        """The credential owning a phone number (E.164), or None."""
        return await self._cached("phone:" + phone, code_rows.route_by_phone)

    async def _cached(self, key: str, find: Callable[[Any, str], Any]) -> Route | None:
        now = time.monotonic()
        route = self._routes.get(key, now)
        if route is not None:
            return route
        async with self._db.read() as conn:
            row = await find(conn, key.partition(":")[2])
            route = (
                None if row is None else _route(row, await inbound_rows.forward_ids(conn, row.id))
            )
        if route is not None:
            self._routes.put(key, route, now)
        return route

    async def accept_mail(self, raw: bytes, mail_from: str, routes: Sequence[Route]) -> list[str]:
        """:meth:`accept` for a raw mail, parsed and stored by the ingest worker when there is one.

        Raises :class:`OffloadUnavailable` when the worker may not have stored it.
        """
        if has_long_line(raw):
            self._metrics.long_lines.inc()
        if self._offload is None:
            return await self.accept(message_from_mail(raw, mail_from), routes)
        try:
            outcomes = await self._offload.ingest(raw, mail_from, routes)
        except OffloadUnavailable:
            self._metrics.ingest_failures.inc("email")
            raise
        self.announce("email", routes, outcomes)
        return outcomes

    async def accept(self, message: Message, routes: Sequence[Route]) -> list[str]:
        """Extract and durably store the message's code for each route; one outcome each."""
        outcomes = await self.store(message, routes)
        self.announce(message.channel, routes, outcomes)
        return outcomes

    async def store(
        self,
        message: Message,
        routes: Sequence[Route],
        *,
        seen: tuple[str, str] | None = None,
    ) -> list[str]:
        """The durable half of :meth:`accept`: extract, seal and commit (any process).

        *seen* is the provider and message id of a text: it is recorded in
        the same transaction, and a second delivery of the same id raises
        :class:`AlreadyStored` with nothing written.
        """
        now = self._clock()
        day = utc_day(now)
        default: list[Decision] = []  # the generic extraction, computed at most once
        links: list[Link | None] = []  # the message's action link, found at most once
        items: list[inbound_rows.Write] = []
        outcomes: list[str] = []
        if seen is not None:
            items.append(SeenRow(seen[0], seen[1], now))
        for route in routes:
            if route.allowed_senders is not None and not sender_allowed(
                message.sender_domain, route.allowed_senders
            ):
                outcomes.append(REJECTED)
                continue
            items.extend(self._forwards(route, message, now))
            code, ambiguous = self._extract(message, route, default)
            items.append(
                CountRow(
                    route.tenant_id, route.credential_id, day, message.channel, code is not None
                )
            )
            link = self._link(message, links)
            if code is None and link is None:
                outcomes.append(AMBIGUOUS if ambiguous else NO_CODE)
                continue
            if code is not None:
                items.append(self._row(route, message, code, now))
                items.append(_code_event(route, message.channel, now))
            if link is not None:
                items.append(
                    self._row(
                        route, message, link.url, now, kind=code_rows.LINK, link_kind=link.kind
                    )
                )
                items.append(_link_event(route, message.channel, link.kind, now))
            if route.report_unsolicited:
                items.append(
                    UnsolicitedRow(
                        route.tenant_id,
                        events.code_unsolicited(
                            credential_id=route.credential_id,
                            channel=message.channel,
                            sender_domain=message.sender_domain,
                            received_at=now,
                        ),
                        now,
                    )
                )
            outcomes.append(CODE if code is not None else LINK)
        try:
            await self._commit.submit(items)
        except RuntimeError:
            # A redelivery this process has not seen (two at once, another
            # replica's or process's, or before a restart) fails its commit
            # on the unique key; anything else is a real failure.
            if seen is not None:
                async with self._db.read() as conn:
                    if await inbound_rows.seen(conn, *seen):
                        raise AlreadyStored(f"{seen[0]} message already stored") from None
            raise
        return outcomes

    def announce(self, channel: str, routes: Sequence[Route], outcomes: Sequence[str]) -> None:
        """After a commit: count the messages and wake the agents waiting on them."""
        for route, outcome in zip(routes, outcomes, strict=True):
            self._metrics.messages.inc(channel, outcome)
            if outcome in (CODE, LINK):
                if route.report_unsolicited and not self._bells.waiters(route.credential_id):
                    self._metrics.unsolicited.inc(channel)
                self._bells.ring(route.credential_id)
            log.debug(
                "message accepted",
                extra={"channel": channel, "credential": route.credential_id, "outcome": outcome},
            )
        if any(r.forwards and o != REJECTED for r, o in zip(routes, outcomes, strict=True)):
            self._forwards_queued()
        if CODE in outcomes or LINK in outcomes:
            self._events_queued()

    def _extract(
        self, message: Message, route: Route, default: list[Decision]
    ) -> tuple[str | None, bool]:
        """The route's code, and whether the message was ambiguous (a likely code, not clear)."""
        if route.pattern:
            compiled = _compiled(route.pattern)
            if compiled is None:
                return None, False
            code = extract_with_pattern(compiled, message.subject, message.text or message.html)
            return code, False
        if not default:
            default.append(
                self._extractor.decide(
                    channel=message.channel,
                    subject=message.subject,
                    text=message.text,
                    html=message.html,
                )
            )
        return default[0].code, default[0].outcome == "ambiguous"

    def _link(self, message: Message, found: list[Link | None]) -> Link | None:
        if not found:
            found.append(
                self._extractor.link(
                    channel=message.channel,
                    subject=message.subject,
                    text=message.text,
                    html=message.html,
                )
            )
        return found[0]

    def _row(
        self,
        route: Route,
        message: Message,
        value: str,
        now: float,
        *,
        kind: str = code_rows.CODE,
        link_kind: str | None = None,
    ) -> CodeRow:
        """A received code (or link, by *kind*), sealed for the route's credential."""
        row_id = ids.new_id(ids.RECEIVED_CODE)
        sealed = self._vault.seal_field_under(
            route.data_key,
            value.encode(),
            tenant_id=route.tenant_id,
            credential_id=route.credential_id,
            field=f"{kind}:{row_id}",
        )
        return CodeRow(
            id=row_id,
            tenant_id=route.tenant_id,
            credential_id=route.credential_id,
            source=message.channel,
            code=sealed,
            sender=message.sender[:320] or None,
            received_at=now,
            expires_at=now + self._ttl,
            kind=kind,
            link_kind=link_kind,
        )

    def _forwards(self, route: Route, message: Message, now: float) -> list[ForwardCopyRow]:
        """A sealed copy of *message* for each of the route's forwarding rules."""
        if not route.forwards:
            return []
        dek = self._vault.unwrap_data_key(
            route.data_key, tenant_id=route.tenant_id, credential_id=route.credential_id
        )
        copy = json.dumps(
            {
                "channel": message.channel,
                "sender": message.sender[:320],
                "subject": message.subject[:500],
                "text": (message.text or message.html)[:MAX_FORWARD_TEXT],
                "received_at": now,
            }
        ).encode()
        items: list[ForwardCopyRow] = []
        for forward_id in route.forwards:
            row_id = ids.new_id(ids.FORWARD_COPY)
            payload = self._vault.seal_field(
                dek,
                copy,
                tenant_id=route.tenant_id,
                credential_id=route.credential_id,
                field=f"forward:{row_id}",
            )
            items.append(
                ForwardCopyRow(
                    id=row_id,
                    forward_id=forward_id,
                    tenant_id=route.tenant_id,
                    credential_id=route.credential_id,
                    payload=payload,
                    created_at=now,
                )
            )
        return items

    async def close(self) -> None:
        await self._commit.close()


#: Characters of a message's text kept in a forwarded copy.
MAX_FORWARD_TEXT = 64 * 1024


def _code_event(route: Route, channel: str, now: float) -> EventRow:
    """``code.received`` for the route's tenant (see :func:`gateway.events.code_received`)."""
    event = events.code_received(credential_id=route.credential_id, source=channel, received_at=now)
    return EventRow(route.tenant_id, event, now)


def _link_event(route: Route, channel: str, kind: str, now: float) -> EventRow:
    """``link.received`` for the route's tenant: metadata only, never the link."""
    event = events.link_received(
        credential_id=route.credential_id, source=channel, kind=kind, received_at=now
    )
    return EventRow(route.tenant_id, event, now)


def route_from_row(row: Any, forwards: tuple[str, ...] = ()) -> Route:
    return _route(row, forwards)


def _route(row: Any, forwards: tuple[str, ...]) -> Route:
    return Route(
        credential_id=row.id,
        tenant_id=row.tenant_id,
        data_key=row.data_key,
        pattern=row.extraction_pattern,
        allowed_senders=decode_senders(row.allowed_senders),
        forwards=forwards,
        report_unsolicited=bool(row.report_unsolicited),
    )
