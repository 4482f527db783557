"""What makes several replicas one gateway: cross-replica wake-ups and a heartbeat.

**Wake-ups.**  Every write that makes a code takeable runs ``pg_notify`` in
its own transaction (``store.signals``).  Each replica keeps one dedicated
PostgreSQL connection listening on that channel and rings its local bells
for the keys it hears, so an agent long-polling replica B is woken the moment
replica A commits the mail.  PostgreSQL does not replay notifications a
listener missed: whenever the listening connection is (re)established, every
local waiter is woken to look at the store again, so nobody sleeps through a
code that arrived while this replica was deaf.  A silent half-open
connection is caught by a ``SELECT 1`` every few seconds.  The same
connection hears when routes change on another replica (a credential's
number, rules or settings) and drops this replica's cached routes, then
and on every reconnection.

**Heartbeat.**  Each replica records itself in ``replicas`` every few
seconds; ``otpgate status`` lists the replicas seen recently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import asyncpg

from .. import ids
from ..store import replicas as replica_rows
from ..store.db import Database
from ..store.signals import CHANNEL, KEYS_CHANNEL, ROUTES_CHANNEL
from .waiters import Bells

log = logging.getLogger("otpgate.replicas")

#: Seconds between liveness checks of the listening connection.
CHECK_EVERY = 5.0
#: Longest pause between reconnection attempts: an agent on this replica waiting
#: for mail another replica took hears of it this long after the database is back.
MAX_BACKOFF = 1.0
#: Seconds between heartbeats.
HEARTBEAT = 5.0
#: A replica's record is removed this long after its last heartbeat (it crashed).
FORGET_AFTER = 24 * 3600.0


class WakeListener:
    """Listens for other replicas' commits and rings this replica's bells."""

    def __init__(
        self,
        dsn: str,
        bells: Bells,
        *,
        routes_changed: Callable[[], None] = lambda: None,
        keys_changed: Callable[[], None] = lambda: None,
        check_every: float = CHECK_EVERY,
    ) -> None:
        self._dsn = dsn
        self._bells = bells
        self._routes_changed = routes_changed
        self._keys_changed = keys_changed
        self._check_every = check_every
        #: Set while listening (tests wait on it).
        self.listening = asyncio.Event()
        self.connections = 0

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                conn: Any = await asyncpg.connect(self._dsn, timeout=5)
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                log.warning(
                    "cannot open the wake-up connection; retrying",
                    extra={"error": type(exc).__name__, "retry_in": round(backoff, 1)},
                )
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)
                continue
            backoff = 0.2
            try:
                await self._listen(conn)
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2)
            log.warning("lost the wake-up connection; reconnecting")

    async def _listen(self, conn: Any) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await conn.add_listener(CHANNEL, self._heard)
            await conn.add_listener(ROUTES_CHANNEL, self._routes_heard)
            await conn.add_listener(KEYS_CHANNEL, self._keys_heard)
            self.connections += 1
            # Whatever was committed while nobody listened: every waiter looks
            # again, and routes and keys are looked up afresh.
            self._routes_changed()
            self._keys_changed()
            self._bells.ring_all()
            self.listening.set()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self._check_every)
                if not lost.is_set():
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), self._check_every)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return

    def _heard(self, _conn: Any, _pid: int, _channel: str, key: str) -> None:
        self._bells.ring(key)

    def _routes_heard(self, _conn: Any, _pid: int, _channel: str, _payload: str) -> None:
        self._routes_changed()

    def _keys_heard(self, _conn: Any, _pid: int, _channel: str, _payload: str) -> None:
        self._keys_changed()


class Heartbeat:
    """Records this replica as alive every few seconds."""

    def __init__(
        self, db: Database, *, every: float = HEARTBEAT, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._every = every
        self._clock = clock
        self.id = ids.new_id(ids.REPLICA)
        self.started_at = clock()
        self.draining = False
        self._beating = asyncio.Lock()

    async def beat(self) -> None:
        # One record per process, written by update-or-insert: two beats of this
        # process at once (the loop and a caller) would both insert.
        async with self._beating, self._db.write() as conn:
            await replica_rows.beat(
                conn,
                id=self.id,
                hostname=socket.gethostname()[:200],
                pid=os.getpid(),
                started_at=self.started_at,
                seen_at=self._clock(),
                draining=self.draining,
            )
            await replica_rows.forget_before(conn, self._clock() - FORGET_AFTER)

    async def run(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception:
                log.warning("could not record this replica's heartbeat", exc_info=True)
            await asyncio.sleep(self._every)

    async def leave(self) -> None:
        """Remove this replica's record (on a clean shutdown)."""
        with contextlib.suppress(Exception):
            async with self._db.write() as conn:
                await replica_rows.leave(conn, self.id)


async def backlog(db: Database) -> dict[str, int]:
    """The forwarded copies and webhook deliveries waiting to be sent."""
    async with db.read() as conn:
        return await replica_rows.queues(conn)


#: A replica not heard from for this long is no longer listed.
SEEN_WINDOW = 60


async def status(db: Database, *, now: float) -> dict[str, Any]:
    """Replicas seen lately and the work waiting, as ``otpgate status`` prints it."""
    async with db.read() as conn:
        rows = await replica_rows.seen_since(conn, now - SEEN_WINDOW)
        waiting = await replica_rows.counts(conn, now)
    return {
        "window_seconds": SEEN_WINDOW,
        "replicas": [
            {
                "id": r.id,
                "hostname": r.hostname,
                "pid": r.pid,
                "draining": bool(r.draining),
                "up_seconds": round(now - r.started_at),
                "seen_seconds_ago": round(now - r.seen_at, 1),
            }
            for r in rows
        ],
        "waiting": waiting,
    }
