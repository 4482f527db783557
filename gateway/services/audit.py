"""The audit trail: who read which secret, changed which factor, held which key.

Each tenant has one hash chain of events (``store.audit``).  An event that
records an action is appended **in the transaction of that action**: a code
handed out and its ``code.read`` event commit together or not at all
(:meth:`AuditTrail.append`).  An action with no write of its own (a TOTP
code computed from its secret, a password read) has its event committed
before the answer leaves (:meth:`AuditTrail.record`); those are grouped, many
requests' events in one transaction, so the trail costs the hot path one
shared commit rather than one each.  If the event cannot be written, the
secret is not handed out.

No event holds a code, secret, password, link, API key or message text:
events name objects by id only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import Unavailable
from ..store import audit as audit_rows
from ..store.db import Conn, Database
from .groupcommit import GroupCommitter

log = logging.getLogger("otpgate.audit")

#: Every action the trail records.
ACTIONS = (
    "password.read",
    "password.set",
    "code.read",
    "authenticator.read",
    "link.read",
    "backup_code.read",
    "authenticator.set",
    "authenticator.removed",
    "phone.set",
    "phone.removed",
    "backup_codes.set",
    "credential.created",
    "credential.deleted",
    "key.created",
    "key.revoked",
    "interaction.answered",
    "login.opened",
    "login.finished",
    "skyvern.set",
    "skyvern.removed",
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something: an API key, the admin, a person through a submit link, or otpgate."""

    key_id: str | None = None
    admin: bool = False
    submit_link: str | None = None
    system: bool = False

    def as_json(self) -> dict[str, Any]:
        if self.key_id is not None:
            return {"key_id": self.key_id}
        if self.admin:
            return {"admin": True}
        if self.submit_link is not None:
            return {"submit_link": self.submit_link}
        return {"system": True}


SYSTEM = Actor(system=True)


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[dict[str, Any]]
    next: int | None


@dataclass(slots=True)
class Broken:
    """The first place a chain does not hold."""

    tenant_id: str
    seq: int
    reason: str


@dataclass(slots=True)
class Verified:
    tenants: int = 0
    events: int = 0
    broken: list[Broken] = field(default_factory=list)


class AuditTrail:
    def __init__(
        self, db: Database, *, enabled: bool = True, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._clock = clock
        self.enabled = enabled
        self._committer = GroupCommitter(db, audit_rows.append)

    def _entry(
        self,
        tenant_id: str,
        actor: Actor,
        action: str,
        credential_id: str | None,
        object_id: str | None,
        outcome: str,
    ) -> audit_rows.Entry:
        assert action in ACTIONS, action
        return audit_rows.Entry(
            tenant_id, self._clock(), actor.as_json(), action, credential_id, object_id, outcome
        )

    async def append(
        self,
        conn: Conn,
        tenant_id: str,
        actor: Actor,
        action: str,
        *,
        credential_id: str | None = None,
        object_id: str | None = None,
        outcome: str = "ok",
        head: tuple[int, str] | None = None,
    ) -> None:
        """Add an event in the caller's transaction (it commits with the action).

        *head* is the chain's head when the transaction already took it
        (``store.audit.head_cte``): one statement fewer.
        """
        if not self.enabled:
            return
        entry = self._entry(tenant_id, actor, action, credential_id, object_id, outcome)
        if head is None:
            await audit_rows.append(conn, [entry])
        else:
            await audit_rows.link(conn, tenant_id, head, [entry])

    async def record(
        self,
        tenant_id: str,
        actor: Actor,
        action: str,
        *,
        credential_id: str | None = None,
        object_id: str | None = None,
        outcome: str = "ok",
    ) -> None:
        """Commit an event now (grouped with others); Unavailable when it cannot be."""
        if not self.enabled:
            return
        entry = self._entry(tenant_id, actor, action, credential_id, object_id, outcome)
        try:
            await self._committer.submit([entry])
        except RuntimeError:
            raise Unavailable("the audit trail could not be written; try again") from None

    async def close(self) -> None:
        await self._committer.close()

    async def page(
        self,
        tenant_id: str,
        *,
        after: int = 0,
        limit: int = 100,
        credential_id: str | None = None,
        action: str | None = None,
    ) -> AuditPage:
        """Events after *after*, oldest first; ``next`` is the ``after`` of the next page."""
        async with self._db.read() as conn:
            rows = await audit_rows.page(
                conn,
                tenant_id,
                after=after,
                limit=limit + 1,
                credential_id=credential_id,
                action=action,
            )
        events = [audit_rows.as_event(r) for r in rows[:limit]]
        more = len(rows) > limit
        return AuditPage(events, events[-1]["seq"] if more and events else None)

    async def latest(
        self, tenant_id: str, *, credential_id: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """The newest events (of one credential), newest first."""
        async with self._db.read() as conn:
            rows = await audit_rows.latest(
                conn, tenant_id, credential_id=credential_id, limit=limit
            )
        return [audit_rows.as_event(r) for r in rows]

    async def daily(
        self,
        tenant_id: str,
        *,
        actions: Sequence[str],
        credential_id: str | None = None,
        days: int = 30,
    ) -> dict[str, dict[str, int]]:
        """For each of the last *days* UTC days (oldest first): action -> how many."""
        now = self._clock()
        today = datetime.fromtimestamp(now, UTC).date()
        first = today.toordinal() - days + 1
        since = datetime.fromordinal(first).replace(tzinfo=UTC).timestamp()
        out = {
            datetime.fromordinal(first + i).date().isoformat(): dict.fromkeys(actions, 0)
            for i in range(days)
        }
        async with self._db.read() as conn:
            found = await audit_rows.counts_since(
                conn, tenant_id, since=since, actions=actions, credential_id=credential_id
            )
        for at, action in found:
            day = datetime.fromtimestamp(at, UTC).date().isoformat()
            if day in out:
                out[day][action] += 1
        return out

    async def verify(self, tenant_id: str | None = None) -> Verified:
        """Recompute every chain (or one); the first broken ``seq`` of each that fails."""
        result = Verified()
        async with self._db.read() as conn:
            tenants = [tenant_id] if tenant_id else await audit_rows.tenants(conn)
        for tenant in tenants:
            result.tenants += 1
            broken = await self._verify_one(tenant, result)
            if broken is not None:
                result.broken.append(broken)
        return result

    async def _verify_one(self, tenant_id: str, result: Verified) -> Broken | None:
        prev, expected = audit_rows.GENESIS, 1
        after = 0
        while True:
            async with self._db.read() as conn:
                rows = await audit_rows.page(conn, tenant_id, after=after, limit=1000)
            if not rows:
                break
            for row in rows:
                event = audit_rows.as_event(row)
                result.events += 1
                seq = event["seq"]
                if seq != expected:
                    return Broken(tenant_id, expected, f"event {expected} is missing")
                if event["prev_hash"] != prev:
                    return Broken(tenant_id, seq, "prev_hash is not the previous event's hash")
                stated = event.pop("hash")
                if audit_rows.chain_hash(prev, event) != stated:
                    return Broken(tenant_id, seq, "hash does not match the event")
                prev, expected = stated, seq + 1
            after = rows[-1].seq
        async with self._db.read() as conn:
            head = await audit_rows.head(conn, tenant_id)
        if head is not None and (head[0] != expected - 1 or head[1] != prev):
            return Broken(tenant_id, expected, "events after this one were removed")
        return None

    async def export(self, tenant_id: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every event (of one tenant), chain by chain, with its tenant: an async iterator."""
        async with self._db.read() as conn:
            tenants = [tenant_id] if tenant_id else await audit_rows.tenants(conn)
        for tenant in tenants:
            after = 0
            while True:
                async with self._db.read() as conn:
                    rows = await audit_rows.page(conn, tenant, after=after, limit=1000)
                if not rows:
                    break
                for row in rows:
                    yield {"tenant_id": tenant} | audit_rows.as_event(row)
                after = rows[-1].seq
