"""Wake-ups across replicas: ``NOTIFY`` inside the transaction that makes a code available.

A second channel says that routes changed (a credential's number, its
forwarding rules or extraction settings, or the credential itself): every
replica then drops the routes it cached for incoming mail and texts.  A
third says that an API key was revoked: every replica drops its key cache.

On PostgreSQL every write that makes a code takeable (a received code, a
person's answer) also runs ``pg_notify`` with the key waiters listen on (a
credential or interaction id).  PostgreSQL delivers a notification only when
its transaction commits, so a replica is never woken for a code that is not
there yet, and never misses one that is (see ``services.replicas`` for the
listening side).  On SQLite there is one process and nothing to do.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import TextClause, text

from .db import Conn, is_postgres

CHANNEL = "otpgate_wake"
ROUTES_CHANNEL = "otpgate_routes"
KEYS_CHANNEL = "otpgate_keys"
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', :key)")
_ROUTES = text(f"SELECT pg_notify('{ROUTES_CHANNEL}', '')")
_KEYS = text(f"SELECT pg_notify('{KEYS_CHANNEL}', '')")
_NOTIFY_WRITTEN = f"SELECT pg_notify('{CHANNEL}', key) FROM (SELECT DISTINCT key FROM written) k"  # noqa: S608 - constants only


async def notify(conn: Conn, keys: Iterable[str]) -> None:
    """Wake the waiters on *keys* in every replica, when this transaction commits."""
    if not is_postgres(conn):
        return
    unique = list(dict.fromkeys(keys))
    if unique:
        await conn.execute(_NOTIFY, [{"key": key} for key in unique])


def notify_returned(returning: str) -> TextClause:
    """PostgreSQL: the write *returning* (SQL, a constant, returning key strings), and
    a ``pg_notify`` for each distinct key: one statement."""
    written = f"WITH written(key) AS ({returning}) "
    return text(written + _NOTIFY_WRITTEN)


async def routes_changed(conn: Conn) -> None:
    """Have every replica drop its cached routes, when this transaction commits."""
    if is_postgres(conn):
        await conn.execute(_ROUTES)


async def keys_changed(conn: Conn) -> None:
    """Have every replica drop its cached API keys, when this transaction commits."""
    if is_postgres(conn):
        await conn.execute(_KEYS)
