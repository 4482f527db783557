"""Messages arriving for a credential (email now, SMS next): extract, seal, commit, wake.

The protocol adapters parse their wire format into a :class:`Message`, find
the credentials it is for with ``route_for_inbox`` / ``route_for_phone``, and
call :meth:`InboundService.accept`, which returns only once every code it
found is durably committed (group commit shares the disk sync between
sessions).  Message bodies are never stored: only the sealed code and the
metadata an agent sees (source, sender, time).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import ids
from ..errors import Invalid
from ..extract import CustomPattern, compile_custom_pattern, extract_code, extract_with_pattern
from ..metrics import Metrics
from ..store import codes as q
from ..store.credentials import decode_senders
from ..store.db import Database
from ..vault import Vault
from .groupcommit import GroupCommitter
from .waiters import Bells

log = logging.getLogger("otpgate.inbound")

#: How long a found route is trusted, and how many are kept.
_ROUTE_CACHE_SECONDS = 2.0
_ROUTE_CACHE_SIZE = 10_000

CODE = "code"
NO_CODE = "no_code"
REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Route:
    """Where a message goes: one credential, with its extraction settings."""

    credential_id: str
    tenant_id: str
    data_key: bytes
    pattern: str | None
    allowed_senders: tuple[str, ...] | None

    def __repr__(self) -> str:
        return f"Route(credential_id={self.credential_id!r})"


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
        code_ttl: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._vault = vault
        self._bells = bells
        self._metrics = metrics
        self._ttl = code_ttl
        self._clock = clock
        self._commit = GroupCommitter(db, q.insert_codes)
        self._routes: dict[str, tuple[float, Route]] = {}

    async def route_for_inbox(self, local_part: str) -> Route | None:
        """The credential owning an inbox local part (``+tag`` already removed), or None.

        Found routes are cached for a couple of seconds (RCPT is the hottest
        query of a mail burst); an unknown inbox is never cached, so a new
        credential's inbox works at once.
        """
        key = "inbox:" + local_part.lower()
        hit = self._routes.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self._db.read() as conn:
            route = _route(await q.route_by_inbox(conn, local_part.lower()))
        if route is not None:
            if len(self._routes) >= _ROUTE_CACHE_SIZE:
                self._routes.clear()
            self._routes[key] = (now + _ROUTE_CACHE_SECONDS, route)
        return route

    async def route_for_phone(self, phone: str) -> Route | None:
        async with self._db.read() as conn:
            return _route(await q.route_by_phone(conn, phone))

    async def accept(self, message: Message, routes: Sequence[Route]) -> list[str]:
        """Extract and durably store the message's code for each route; one outcome each."""
        outcomes = await self.store(message, routes)
        self.announce(message.channel, routes, outcomes)
        return outcomes

    async def store(self, message: Message, routes: Sequence[Route]) -> list[str]:
        """The durable half of :meth:`accept`: extract, seal and commit (any process)."""
        now = self._clock()
        default: list[str | None] = []  # the generic extraction, computed at most once
        rows: list[dict[str, Any]] = []
        outcomes: list[str] = []
        for route in routes:
            if route.allowed_senders is not None and not sender_allowed(
                message.sender_domain, route.allowed_senders
            ):
                outcomes.append(REJECTED)
                continue
            code = self._extract(message, route, default)
            if code is None:
                outcomes.append(NO_CODE)
                continue
            rows.append(self._row(route, message, code, now))
            outcomes.append(CODE)
        await self._commit.submit(rows)
        return outcomes

    def announce(self, channel: str, routes: Sequence[Route], outcomes: Sequence[str]) -> None:
        """After a commit: count the messages and wake the agents waiting on them."""
        for route, outcome in zip(routes, outcomes, strict=True):
            self._metrics.messages.inc(channel, outcome)
            if outcome == CODE:
                self._bells.ring(route.credential_id)
            log.debug(
                "message accepted",
                extra={"channel": channel, "credential": route.credential_id, "outcome": outcome},
            )

    def forget_routes(self) -> None:
        """Drop cached routes (a credential's inbox, phone or extraction settings changed)."""
        self._routes.clear()

    def _extract(self, message: Message, route: Route, default: list[str | None]) -> str | None:
        if route.pattern:
            compiled = _compiled(route.pattern)
            if compiled is None:
                return None
            return extract_with_pattern(compiled, message.subject, message.text or message.html)
        if not default:
            default.append(
                extract_code(
                    channel=message.channel,
                    subject=message.subject,
                    text=message.text,
                    html=message.html,
                )
            )
        return default[0]

    def _row(self, route: Route, message: Message, code: str, now: float) -> dict[str, Any]:
        row_id = ids.new_id(ids.RECEIVED_CODE)
        dek = self._vault.unwrap_data_key(
            route.data_key, tenant_id=route.tenant_id, credential_id=route.credential_id
        )
        sealed = self._vault.seal_field(
            dek,
            code.encode(),
            tenant_id=route.tenant_id,
            credential_id=route.credential_id,
            field=f"code:{row_id}",
        )
        return {
            "id": row_id,
            "tenant_id": route.tenant_id,
            "credential_id": route.credential_id,
            "source": message.channel,
            "code": sealed,
            "sender": message.sender[:320] or None,
            "received_at": now,
            "expires_at": now + self._ttl,
        }

    async def close(self) -> None:
        await self._commit.close()


def _route(row: Any) -> Route | None:
    if row is None:
        return None
    return Route(
        credential_id=row.id,
        tenant_id=row.tenant_id,
        data_key=row.data_key,
        pattern=row.extraction_pattern,
        allowed_senders=decode_senders(row.allowed_senders),
    )
