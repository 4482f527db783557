"""Sessions of the authentication center: a person signed in with an owner's or manager's key.

A session is a random token in a cookie; the store keeps only its keyed hash
(HMAC-SHA256 with the key ring's hash key, as for API keys) and the id of the
key that opened it, never the key.  A session ends when it is idle too long,
at its absolute end, on sign-out, or as soon as its key is revoked or expires
(the pages ask the tenant service about the key on every request).

Every form carries a CSRF token derived from a per-session secret: the keyed
hash of the session token (or, before sign-in, of a random pre-session
cookie), so nothing more is stored and a token from one session is worthless
in another.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..store import websessions as session_rows
from ..store.db import Database
from ..vault import KeyRing

#: A session ends after this long without a request...
IDLE_SECONDS = 30 * 60
#: ...and this long after sign-in in any case.
ABSOLUTE_SECONDS = 12 * 3600
#: A session's last use is written at most this often (a page view is not a write).
_TOUCH_EVERY = 60.0
_TOKEN_BYTES = 32
_MAX_TOKEN = 64


@dataclass(frozen=True, slots=True)
class WebSession:
    """A live session: whose it is and which key opened it."""

    tenant_id: str
    key_id: str
    created_at: float
    expires_at: float


class WebSessions:
    """Start, find, end and sweep sessions; make and check their CSRF tokens."""

    def __init__(
        self, db: Database, keyring: KeyRing, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._clock = clock

    def _hash(self, token: str) -> bytes:
        return self._keyring.keyed_hash("session:" + token)

    async def start(self, tenant_id: str, key_id: str) -> str:
        """A new session for *key_id*; returns its token (for the cookie only)."""
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        now = self._clock()
        async with self._db.write() as conn:
            await session_rows.insert_session(
                conn,
                token_hash=self._hash(token),
                tenant_id=tenant_id,
                key_id=key_id,
                created_at=now,
                last_seen_at=now,
                expires_at=now + ABSOLUTE_SECONDS,
            )
        return token

    async def find(self, token: str) -> WebSession | None:
        """The live session of *token*, or None (an ended one is deleted on the way)."""
        if not token or len(token) > _MAX_TOKEN:
            return None
        digest = self._hash(token)
        now = self._clock()
        async with self._db.read() as conn:
            row = await session_rows.find(conn, digest)
        if row is None:
            return None
        if row.expires_at <= now or row.last_seen_at + IDLE_SECONDS <= now:
            await self._remove(digest)
            return None
        if now - row.last_seen_at >= _TOUCH_EVERY:
            async with self._db.write() as conn:
                await session_rows.touch(conn, digest, now)
        return WebSession(row.tenant_id, row.key_id, row.created_at, row.expires_at)

    async def end(self, token: str) -> None:
        if token and len(token) <= _MAX_TOKEN:
            await self._remove(self._hash(token))

    async def end_for_key(self, key_id: str) -> int:
        """End every session opened with *key_id* (its key was revoked)."""
        async with self._db.write() as conn:
            return await session_rows.remove_for_key(conn, key_id)

    async def _remove(self, digest: bytes) -> None:
        async with self._db.write() as conn:
            await session_rows.remove(conn, digest)

    async def sweep(self) -> int:
        """Delete ended sessions."""
        now = self._clock()
        idle_before = now - IDLE_SECONDS
        return await self._db.sweep(
            lambda conn: session_rows.any_stale(conn, now=now, idle_before=idle_before),
            lambda conn: session_rows.remove_stale(conn, now=now, idle_before=idle_before),
        )

    # -- CSRF -------------------------------------------------------------------------

    def csrf_token(self, seed: str) -> str:
        """The form token of the session (or pre-session) whose cookie holds *seed*."""
        return self._keyring.keyed_hash("csrf:" + seed).hex()

    def csrf_ok(self, seed: str, presented: str) -> bool:
        """Whether *presented* is the form token of *seed*, compared in constant time."""
        if not seed or not presented or len(presented) > 128:
            return False
        return hmac.compare_digest(self.csrf_token(seed), presented)


def new_seed() -> str:
    """A random pre-session value (for the sign-in form's CSRF token)."""
    return secrets.token_urlsafe(_TOKEN_BYTES)
