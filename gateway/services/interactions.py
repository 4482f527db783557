"""User-driven submission: a person gives the code an agent is waiting for.

An agent opens an interaction for a credential; the tenant's webhooks get
``interaction.code_required`` with a ``submit_url`` that carries a random
token (256 bits, kept only as a SHA-256 hash), so a person can answer
without an API key.  The answer is sealed with the credential's data key
(bound to the interaction) and, in the same transaction, stored as a received
code with source ``user`` whose id is the interaction's: the agent gets it
from ``GET /v1/interactions/{id}/code`` or from the credential's code
endpoint, whichever asks first, and never twice (see ``store.interactions``).

Life of an interaction::

    pending ──answer──> submitted ──handed out──> delivered
       │                    │
       └──── time up ───────┴──> expired  (interaction.expired, queued once)

``expires_at`` is the deadline of the current state: the time to answer
while pending, then the time the answer waits for its agent (the same TTL
again) before it is destroyed.  At most ``MAX_ATTEMPTS`` answers are taken
per interaction, refused ones included.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import events, ids
from ..errors import Conflict, Expired, Invalid, NotFound, RateLimited
from ..store import codes as code_rows
from ..store import interactions as interaction_rows
from ..store.codes import CodeRow
from ..store.db import Conn, Database
from ..store.signals import notify
from ..store.webhooks import enqueue
from ..vault import Vault
from .audit import SYSTEM, Actor, AuditTrail
from .codes import Code
from .waiters import Bells, sleep_on

MAX_ATTEMPTS = 5
MAX_PROMPT = 500
MAX_CODE = 64
#: How long delivered and expired interactions are kept (then GET answers 404).
KEEP_FINISHED = 7 * 24 * 3600
_SWEEP_BATCH = 500
#: Seconds between deletions of finished interactions past ``KEEP_FINISHED``.
_FORGET_EVERY = 3600
#: ``secrets.token_urlsafe(32)``: 43 characters of the URL-safe base64 alphabet.
_TOKEN_BYTES = 32
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True, slots=True)
class InteractionInfo:
    """What the API shows of an interaction; ``submit_url`` only when it is created."""

    id: str
    credential_id: str
    status: str
    prompt: str | None
    attempts: int
    created_at: float
    expires_at: float
    submitted_at: float | None
    submit_url: str | None = None
    #: ``code`` or ``approval``.
    kind: str = "code"


@dataclass(frozen=True, slots=True)
class OpenRequest:
    """An open request and the name of its credential, as the web pages list it."""

    interaction: InteractionInfo
    credential_name: str
    #: An approval's number to match, for the signed-in person who decides.
    match: str | None = None


@dataclass(frozen=True, slots=True)
class SubmitPage:
    """What the submit page shows a person: never a code, never the token."""

    credential_name: str
    prompt: str | None
    status: str
    expires_at: float
    now: float
    attempts_left: int
    #: ``code`` or ``approval``.
    kind: str = "code"
    #: An approval's number to match on the login page (shown large).
    match: str | None = None

    @property
    def seconds_left(self) -> int:
        return max(0, int(self.expires_at - self.now))


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def looks_like_token(token: str) -> bool:
    """A cheap syntax check, so anything else is unknown without a query."""
    return len(token) == 43 and set(token) <= _TOKEN_CHARS


def clean_code(raw: str) -> str | None:
    """The code as a person typed it, trimmed; None unless 1 to 64 printable characters."""
    code = raw.strip()
    if not 1 <= len(code) <= MAX_CODE or not code.isprintable():
        return None
    return code


KINDS = ("code", "approval")
DECISIONS = ("approved", "denied")
MAX_MATCH = 16


def clean_match(raw: str) -> str:
    """An approval's number to match: 1 to 16 letters or digits, as the login page shows it."""
    match = raw.strip()
    if not 1 <= len(match) <= MAX_MATCH or not match.isalnum():
        raise Invalid(f"'match' must be 1 to {MAX_MATCH} letters or digits")
    return match


def clean_prompt(raw: str | None) -> str | None:
    if raw is None:
        return None
    prompt = raw.strip()
    if len(prompt) > MAX_PROMPT:
        raise Invalid(f"'prompt' must be at most {MAX_PROMPT} characters")
    if any(not c.isprintable() and c not in "\n\t" for c in prompt.replace("\r\n", "\n")):
        raise Invalid("'prompt' must not hold control characters")
    return prompt.replace("\r\n", "\n") or None


def _info(row: Any, submit_url: str | None = None) -> InteractionInfo:
    return InteractionInfo(
        id=row.id,
        credential_id=row.credential_id,
        status=row.status,
        prompt=row.prompt,
        attempts=row.attempts,
        created_at=row.created_at,
        expires_at=row.expires_at,
        submitted_at=row.submitted_at,
        submit_url=submit_url,
        kind=row.kind,
    )


def _expired_event(row: Any) -> events.Event:
    return events.interaction_expired(
        interaction_id=row.id,
        credential_id=row.credential_id,
        expires_at=row.expires_at,
        answered=row.submitted_at is not None,
    )


class InteractionService:
    def __init__(
        self,
        db: Database,
        vault: Vault,
        bells: Bells,
        audit: AuditTrail | None = None,
        *,
        ttl: int,
        public_url: str,
        events_queued: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._vault = vault
        self._bells = bells
        self._audit = audit or AuditTrail(db, enabled=False)
        self._ttl = ttl
        self._public_url = public_url.rstrip("/")
        self._events_queued = events_queued
        self._clock = clock
        self._next_forget = 0.0

    # -- opening --------------------------------------------------------------------

    async def create(
        self,
        tenant_id: str,
        cred_id: str,
        *,
        prompt: str | None = None,
        kind: str = "code",
        match: str | None = None,
    ) -> InteractionInfo:
        """Open a request for a person's code (or decision); queues ``interaction.code_required``.

        An ``approval`` asks a person to approve or deny a sign-in, and may
        carry the number the login page shows (*match*), sealed: it is shown
        only on the page behind the submit link, never in a webhook.
        """
        prompt = clean_prompt(prompt)
        if kind not in KINDS:
            raise Invalid("'kind' must be code or approval")
        if match is not None:
            if kind != "approval":
                raise Invalid("'match' is for an approval (kind: approval)")
            match = clean_match(match)
        now = self._clock()
        interaction_id = ids.new_id(ids.INTERACTION)
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        submit_url = f"{self._public_url}/submit/{token}"
        values = {
            "id": interaction_id,
            "tenant_id": tenant_id,
            "credential_id": cred_id,
            "prompt": prompt,
            "status": interaction_rows.PENDING,
            "token_hash": token_hash(token),
            "code": None,
            "attempts": 0,
            "created_at": now,
            "expires_at": now + self._ttl,
            "submitted_at": None,
            "kind": kind,
        }
        async with self._db.write() as conn:
            cred = await interaction_rows.credential(conn, tenant_id, cred_id)
            if cred is None:
                raise NotFound("no such credential")
            values["submit_token"] = self._vault.seal_field_under(
                cred.data_key,
                token.encode(),
                tenant_id=tenant_id,
                credential_id=cred_id,
                field=f"submit:{interaction_id}",
            )
            if match is not None:
                values["match"] = self._vault.seal_field_under(
                    cred.data_key,
                    match.encode(),
                    tenant_id=tenant_id,
                    credential_id=cred_id,
                    field=f"match:{interaction_id}",
                )
            await interaction_rows.insert_interaction(conn, **values)
            # Its submit_url is filled in by the sender (fill_submit_url): the
            # token is a secret and the queued body is stored in clear.
            event = events.code_required(
                interaction_id=interaction_id,
                credential_id=cred_id,
                credential_name=cred.name,
                prompt=prompt,
                expires_at=now + self._ttl,
                kind=kind,
            )
            await enqueue(conn, tenant_id, event.type, event.data, now=now)
        self._events_queued()
        return InteractionInfo(
            id=interaction_id,
            credential_id=cred_id,
            status=interaction_rows.PENDING,
            prompt=prompt,
            attempts=0,
            created_at=now,
            expires_at=now + self._ttl,
            submitted_at=None,
            submit_url=submit_url,
            kind=kind,
        )

    async def get(self, tenant_id: str, interaction_id: str, *, wait: float = 0) -> InteractionInfo:
        """The interaction; with *wait*, as soon as it is no longer pending (or *wait* ends)."""
        deadline = time.monotonic() + wait
        with self._bells.waiting(interaction_id):
            while True:
                ticket = self._bells.ticket(interaction_id)  # before looking
                row = await self._current(tenant_id, interaction_id)
                remaining = deadline - time.monotonic()
                if row.status != interaction_rows.PENDING or remaining <= 0:
                    return _info(row)
                if self._bells.closing:
                    return _info(row)
                until_expiry = max(0.0, row.expires_at - self._clock()) + 0.01
                await sleep_on(ticket, min(remaining, until_expiry))

    async def credential_of(self, tenant_id: str, interaction_id: str) -> str | None:
        """The credential an interaction belongs to, or None when there is no such one."""
        async with self._db.read() as conn:
            row = await interaction_rows.get(conn, tenant_id, interaction_id)
        return None if row is None else str(row.credential_id)

    async def _current(self, tenant_id: str, interaction_id: str) -> Any:
        """The interaction as it stands, expiring it first if its time is up."""
        async with self._db.read() as conn:
            row = await interaction_rows.get(conn, tenant_id, interaction_id)
        if row is None:
            raise NotFound("no such interaction")
        if row.status in interaction_rows.OPEN and row.expires_at <= self._clock():
            await self._expire(tenant_id, interaction_id)
            async with self._db.read() as conn:
                row = await interaction_rows.get(conn, tenant_id, interaction_id)
            if row is None:  # its credential was deleted meanwhile
                raise NotFound("no such interaction")
        return row

    # -- answering ------------------------------------------------------------------

    async def page(self, token: str) -> SubmitPage:
        """What the submit page shows for *token*; NotFound for an unknown token."""
        row = await self._by_token(token)
        if row.status in interaction_rows.OPEN and row.expires_at <= self._clock():
            await self._expire(row.tenant_id, row.id)
            row = await self._by_token(token)
        match = self._match(row)
        return SubmitPage(
            credential_name=row.name,
            prompt=row.prompt,
            status=row.status,
            expires_at=row.expires_at,
            now=self._clock(),
            attempts_left=max(0, MAX_ATTEMPTS - row.attempts),
            kind=row.kind,
            match=match,
        )

    async def submit_by_token(self, token: str, code: str) -> None:
        """A person's answer through the submit page (the token is the authority)."""
        row = await self._by_token(token)
        await self._submit(row, code, Actor(submit_link=row.id))

    async def submit(
        self, tenant_id: str, interaction_id: str, code: str, *, actor: Actor = SYSTEM
    ) -> None:
        """An answer sent with one of the tenant's API keys (or through its web pages)."""
        await self._submit(await self._for_answer(tenant_id, interaction_id), code, actor)

    async def _for_answer(self, tenant_id: str, interaction_id: str) -> Any:
        """The interaction with what an answer needs (its credential's data key)."""
        async with self._db.read() as conn:
            row = await interaction_rows.for_submission(conn, tenant_id, interaction_id)
        if row is None:
            raise NotFound("no such interaction")
        return row

    async def _by_token(self, token: str) -> Any:
        if not looks_like_token(token):
            raise NotFound("this link is not valid")
        digest = token_hash(token)
        async with self._db.read() as conn:
            row = await interaction_rows.by_token(conn, digest)
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            raise NotFound("this link is not valid")
        return row

    async def decide_by_token(self, token: str, decision: str) -> None:
        """A person's decision on an approval, through the submit page."""
        row = await self._by_token(token)
        await self._decide(row, decision, Actor(submit_link=row.id))

    async def decide(
        self, tenant_id: str, interaction_id: str, decision: str, *, actor: Actor = SYSTEM
    ) -> None:
        """A decision sent with one of the tenant's keys (or through its web pages)."""
        await self._decide(await self._for_answer(tenant_id, interaction_id), decision, actor)

    async def _decide(self, row: Any, decision: str, actor: Actor) -> None:
        if decision not in DECISIONS:
            raise Invalid("'decision' must be approved or denied")
        if row.kind != "approval":
            raise Invalid("this request asks for a code, not a decision", code="not_an_approval")
        now = self._clock()
        await self._refuse_unless_open(row, now)
        tenant_id, cred_id = row.tenant_id, row.credential_id
        async with self._db.write() as conn:
            decided = await interaction_rows.decide(
                conn, row.id, decision=decision, now=now, max_attempts=MAX_ATTEMPTS
            )
            if decided:
                await notify(conn, (row.id,))  # waiters on other replicas
                event = events.interaction_decided(
                    interaction_id=row.id,
                    credential_id=cred_id,
                    decision=decision,
                    decided_at=now,
                )
                await enqueue(conn, tenant_id, event.type, event.data, now=now)
                await self._audit.append(
                    conn,
                    tenant_id,
                    actor,
                    "interaction.answered",
                    credential_id=cred_id,
                    object_id=row.id,
                    outcome=decision,
                )
        if not decided:
            await self._refuse_now(tenant_id, row.id, now)
            raise Conflict("this request changed meanwhile; ask again")
        self._events_queued()
        self._bells.ring(row.id)

    async def _submit(self, row: Any, raw: str, actor: Actor) -> None:
        if row.kind != "code":
            raise Invalid(
                "this request asks for a decision (approved or denied), not a code",
                code="not_a_code_request",
            )
        now = self._clock()
        await self._refuse_unless_open(row, now)
        code = clean_code(raw)
        if code is None:
            async with self._db.write() as conn:
                counted = await interaction_rows.count_attempt(
                    conn, row.id, now=now, max_attempts=MAX_ATTEMPTS
                )
            if not counted:
                await self._refuse_now(row.tenant_id, row.id, now)
            raise Invalid(f"the code must be 1 to {MAX_CODE} printable characters")
        tenant_id, cred_id = row.tenant_id, row.credential_id
        dek = self._vault.unwrap_data_key(row.data_key, tenant_id=tenant_id, credential_id=cred_id)

        def sealed(field: str) -> bytes:
            return self._vault.seal_field(
                dek, code.encode(), tenant_id=tenant_id, credential_id=cred_id, field=field
            )

        keep_until = now + self._ttl
        async with self._db.write() as conn:
            stored = await interaction_rows.submit(
                conn,
                row.id,
                sealed=sealed(f"interaction:{row.id}"),
                now=now,
                keep_until=keep_until,
                max_attempts=MAX_ATTEMPTS,
            )
            if stored:
                # Its twin for GET /v1/credentials/{id}/code; the same id ties them.
                twin = CodeRow(
                    id=row.id,
                    tenant_id=tenant_id,
                    credential_id=cred_id,
                    source="user",
                    code=sealed(f"code:{row.id}"),
                    sender=None,
                    received_at=now,
                    expires_at=keep_until,
                )
                await code_rows.insert_codes(conn, [twin])
                await notify(conn, (row.id, cred_id))  # waiters on other replicas
                event = events.code_submitted(
                    interaction_id=row.id, credential_id=cred_id, submitted_at=now
                )
                await enqueue(conn, tenant_id, event.type, event.data, now=now)
                await self._audit.append(
                    conn,
                    tenant_id,
                    actor,
                    "interaction.answered",
                    credential_id=cred_id,
                    object_id=row.id,
                )
        if not stored:
            await self._refuse_now(tenant_id, row.id, now)
            raise Conflict("this request changed meanwhile; ask again")
        self._events_queued()
        self._bells.ring(row.id)
        self._bells.ring(cred_id)

    async def _refuse_unless_open(self, row: Any, now: float) -> None:
        """Raise the reason *row* takes no answer (409, 410 or 429); return if it does."""
        if row.status in (interaction_rows.SUBMITTED, interaction_rows.DELIVERED):
            raise Conflict("a code was already given for this request", code="already_answered")
        if row.status in (interaction_rows.APPROVED, interaction_rows.DENIED):
            raise Conflict(f"this request was already {row.status}", code="already_answered")
        if row.status == interaction_rows.EXPIRED:
            raise Expired("this request has expired")
        if row.expires_at <= now:
            await self._expire(row.tenant_id, row.id)
            raise Expired("this request has expired")
        if row.attempts >= MAX_ATTEMPTS:
            raise RateLimited(
                f"this request took {MAX_ATTEMPTS} tries already", code="too_many_attempts"
            )

    async def _refuse_now(self, tenant_id: str, interaction_id: str, now: float) -> None:
        """After a conditional update lost: re-read and raise the reason."""
        async with self._db.read() as conn:
            row = await interaction_rows.get(conn, tenant_id, interaction_id)
        if row is None:
            raise NotFound("no such interaction")
        await self._refuse_unless_open(row, now)

    # -- handing out ----------------------------------------------------------------

    async def take(
        self, tenant_id: str, interaction_id: str, *, wait: float = 0, actor: Actor = SYSTEM
    ) -> Code | None:
        """The submitted code, once; None when none came within *wait* seconds.

        NotFound for an unknown interaction, Expired once its time is up or
        its code was handed out (here or by the credential's code endpoint).
        """
        deadline = time.monotonic() + wait
        with self._bells.waiting(interaction_id):
            while True:
                ticket = self._bells.ticket(interaction_id)  # before looking
                row = await self._current(tenant_id, interaction_id)
                if row.kind != "code":
                    raise Invalid(
                        "this request asks for a decision; read it with GET /v1/interactions/{id}",
                        code="not_a_code_request",
                    )
                if row.status == interaction_rows.EXPIRED:
                    raise Expired("this request has expired")
                if row.status == interaction_rows.DELIVERED:
                    raise Expired("its code was already handed out", code="already_delivered")
                if row.status == interaction_rows.SUBMITTED:
                    code = await self._take(tenant_id, interaction_id, actor)
                    if code is not None:
                        return code
                    continue  # someone else took it or time ran out: look again
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._bells.closing:
                    return None
                # Wake at the deadline to report expiry even if the sweeper is late.
                until_expiry = max(0.0, row.expires_at - self._clock()) + 0.01
                await sleep_on(ticket, min(remaining, until_expiry))

    async def _take(self, tenant_id: str, interaction_id: str, actor: Actor) -> Code | None:
        async with self._db.write() as conn:
            row = await interaction_rows.take(conn, tenant_id, interaction_id, now=self._clock())
            if row is None:
                return None
            cred = await _credential(conn, tenant_id, row.credential_id)
            await self._audit.append(
                conn,
                tenant_id,
                actor,
                "code.read",
                credential_id=row.credential_id,
                object_id=interaction_id,
            )
        self._bells.ring(interaction_id)
        code = self._vault.open_field_under(
            cred.data_key,
            row.code,
            tenant_id=tenant_id,
            credential_id=row.credential_id,
            field=f"interaction:{interaction_id}",
        )
        return Code(code.decode(), "user", received_at=row.submitted_at)

    # -- expiry ---------------------------------------------------------------------

    async def _expire(self, tenant_id: str, interaction_id: str) -> None:
        """Expire one interaction whose time is up, if nobody (the sweeper) did yet."""
        now = self._clock()
        async with self._db.write() as conn:
            row = await interaction_rows.expire_one(conn, tenant_id, interaction_id, now=now)
            if row is not None:
                event = _expired_event(row)
                await enqueue(conn, tenant_id, event.type, event.data, now=now)
        if row is not None:
            self._events_queued()
            self._bells.ring(interaction_id)

    async def sweep(self) -> int:
        """Mark expired interactions and queue ``interaction.expired``; how many.

        Each is expired by a conditional update, so sweepers on several
        replicas (and a reader that finds one out of time) queue its event once.
        """
        expired = 0
        while True:
            now = self._clock()
            async with self._db.read() as conn:  # most sweeps find nothing: no write lock
                due = await interaction_rows.due(conn, now=now, limit=_SWEEP_BATCH)
            if not due:
                break
            async with self._db.write() as conn:
                rows = await interaction_rows.expire_due(conn, due, now=now)
                for row in rows:
                    event = _expired_event(row)
                    await enqueue(conn, row.tenant_id, event.type, event.data, now=now)
            if rows:
                self._events_queued()
                for row in rows:
                    self._bells.ring(row.id)
            expired += len(rows)
            if len(due) < _SWEEP_BATCH:
                break
        if now >= self._next_forget:
            before = now - KEEP_FINISHED
            await self._db.sweep(
                lambda conn: interaction_rows.any_finished_before(conn, before=before),
                lambda conn: interaction_rows.forget_finished(conn, before=before),
            )
            self._next_forget = now + _FORGET_EVERY
        return expired

    async def open_requests(
        self, tenant_id: str, *, credential_id: str | None = None, limit: int = 200
    ) -> list[OpenRequest]:
        """The tenant's requests still open (pending an answer, or answered and unclaimed)."""
        async with self._db.read() as conn:
            rows = await interaction_rows.open_for_tenant(
                conn, tenant_id, now=self._clock(), credential_id=credential_id, limit=limit
            )
        return [OpenRequest(_info(row), row.credential_name, self._match(row)) for row in rows]

    def _match(self, row: Any) -> str | None:
        if row.match is None:
            return None
        return self._vault.open_field_under(
            row.data_key,
            row.match,
            tenant_id=row.tenant_id,
            credential_id=row.credential_id,
            field=f"match:{row.id}",
        ).decode()


async def _credential(conn: Conn, tenant_id: str, cred_id: str) -> Any:
    cred = await interaction_rows.credential(conn, tenant_id, cred_id)
    assert cred is not None  # an interaction cascades with its credential
    return cred


async def fill_submit_url(db: Database, vault: Vault, public_url: str, body: str) -> str:
    """An ``interaction.code_required`` body with its ``submit_url`` put in, for sending.

    The queued body holds ``null`` there; the link is rebuilt from the
    interaction's sealed token at each attempt, so every attempt sends the
    same bytes.  An interaction that is gone leaves the link ``null``.
    """
    event = json.loads(body)
    data = event.get("data") or {}
    interaction_id = data.get("interaction_id")
    if event.get("type") != events.CODE_REQUIRED.name or not isinstance(interaction_id, str):
        return body
    async with db.read() as conn:
        row = await interaction_rows.sealed_token(conn, interaction_id)
    if row is None or row.submit_token is None:
        return body
    token = vault.open_field_under(
        row.data_key,
        row.submit_token,
        tenant_id=row.tenant_id,
        credential_id=row.credential_id,
        field=f"submit:{interaction_id}",
    ).decode()
    data["submit_url"] = f"{public_url.rstrip('/')}/submit/{token}"
    return events.encode_body(event)
