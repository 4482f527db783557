"""The database handle: engine, connections for reading and writing, migrations.

SQLite (the default) runs in WAL mode with ``synchronous=FULL``, so a commit
is on disk before the caller answers anyone; writes in this process are
serialised by an asyncio lock and start with ``BEGIN IMMEDIATE`` so two
writers never deadlock on a lock upgrade (another process, such as
``otpgate keys rotate``, waits on SQLite's busy timeout).  PostgreSQL goes
through the same code with asyncpg.

SQLite work runs inline on the event loop.  aiosqlite hands every call to a
thread and back, and while the loop is busy each hand-over waits for the
GIL (up to the 5 ms switch interval): a three-statement commit took 13 ms
under SMTP load, most of it waiting, where the work itself (an fsync
included) takes well under a millisecond.  So:

- reads use a query-only connection inline (an indexed lookup takes
  microseconds, and WAL readers never wait for writers);
- a write first tries ``BEGIN IMMEDIATE`` inline without waiting; once it
  holds the write lock nothing in the transaction can wait on anyone else,
  so it runs and commits (with its fsync) inline too.  Only when another
  process (``otpgate keys rotate``, say) holds the lock does the write go
  through the async engine, which waits for it off the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import ColumnElement, Engine, create_engine, event, literal, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.base import Executable

from ..errors import ConfigError, StoreUnavailable

log = logging.getLogger("otpgate.store")

_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
#: Pauses between inline attempts at the SQLite write lock (about 50 ms in all).
_INLINE_RETRIES = (0.0005, 0.001, 0.002, 0.002, 0.005, 0.005, 0.01, 0.01, 0.015)
# Any fixed number: replicas starting together take turns to migrate.
_MIGRATION_LOCK = 0x6F7470676174


class Database:
    """One engine and the rules for using it; build with :meth:`open`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._write_lock = asyncio.Lock()
        self._inline = _inline_engine(engine, writer=False) if self.is_sqlite else None
        self._inline_writer = _inline_engine(engine, writer=True) if self.is_sqlite else None
        self.inline_writes = 0
        self.deferred_writes = 0

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True, existing: bool = False) -> Database:
        """Connect, check the database is reachable and bring its schema up to date.

        With *existing* (``otpgate status``, ``audit``, the ingest worker) a
        SQLite file that does not exist is an error: such a command never
        creates an empty database where it happens to run.
        """
        try:
            engine = _make_engine(url, create=not existing)
        except OSError as exc:  # the SQLite file's directory cannot be made
            raise ConfigError(
                f"cannot open the database: {exc.filename}: {exc.strerror or exc}"
            ) from None
        db = cls(engine)
        try:
            if migrate:
                await db.migrate()
            else:
                await db.ping()
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise ConfigError(f"cannot open the database: {_describe(exc)}") from None
        return db

    async def close(self) -> None:
        for inline in (self._inline, self._inline_writer):
            if inline is not None:
                inline.dispose()
        await self.engine.dispose()

    def libpq_dsn(self) -> str:
        """The PostgreSQL URL in libpq's form (for a raw connection), with its password."""
        url = self.engine.url.set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Conn]:
        """A connection for queries that change nothing.

        Consume each result before the next ``await``: on SQLite the
        connection is shared by every reader on the loop.  On PostgreSQL it
        runs without a transaction: each query is one round trip, where
        ``BEGIN`` and ``ROLLBACK`` around it would cost two more, and under
        READ COMMITTED each statement has its own snapshot either way.
        """
        try:
            if self._inline is not None:
                with self._inline.connect() as sync_conn:
                    yield InlineConnection(sync_conn)
            else:
                async with self.engine.connect() as conn:
                    yield await conn.execution_options(isolation_level="AUTOCOMMIT")
        except (DBAPIError, OSError) as exc:
            if not _temporary(exc):
                raise
            log.warning("the database cannot be reached or written: %s", _describe(exc))
            raise StoreUnavailable() from exc

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[Conn]:
        """A transaction that is committed (durably) when the block ends without error.

        A database that cannot be reached or written (down, restarting, its
        disk full) raises :class:`StoreUnavailable` here, as in :meth:`read`.
        """
        try:
            async with self._write() as conn:
                yield conn
        except (DBAPIError, OSError) as exc:
            if not _temporary(exc):
                raise
            log.warning("the database cannot be reached or written: %s", _describe(exc))
            raise StoreUnavailable() from exc

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[Conn]:
        if self._inline_writer is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock:
            sync_conn = await self._begin_inline(self._inline_writer)
            if sync_conn is not None:
                self.inline_writes += 1
                with sync_conn:
                    try:
                        yield InlineConnection(sync_conn)
                    except BaseException:
                        sync_conn.rollback()
                        raise
                    sync_conn.commit()
                return
            # Another process holds the write lock: wait for it off the loop.
            self.deferred_writes += 1
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(otpgate_write=True)
                async with conn.begin():
                    yield conn

    async def _begin_inline(self, inline: Engine) -> Connection | None:
        """BEGIN IMMEDIATE on the inline connection, retrying briefly off the loop.

        Another process (the ingest worker, a CLI command) holds the lock for
        a millisecond or so at a time: a few short sleeps usually get it
        without ever blocking the loop.  None when it stays taken.
        """
        for delay in _INLINE_RETRIES:
            sync_conn = inline.connect()
            try:
                sync_conn.begin()  # fails at once if another process holds the lock
            except OperationalError:
                sync_conn.close()
                await asyncio.sleep(delay)
                continue
            return sync_conn
        return None

    async def sweep(
        self, due: Callable[[Conn], Awaitable[bool]], remove: Callable[[Conn], Awaitable[int]]
    ) -> int:
        """A sweeper's *remove*, in a write transaction only when *due* finds work; how many.

        *due* looks on a read connection, so a round with nothing due (most
        rounds) takes no write lock, holds up no mail being committed and
        writes nothing: one index probe per table on a store of any size.
        """
        async with self.read() as conn:
            if not await due(conn):
                return 0
        async with self.write() as conn:
            return await remove(conn)

    @contextlib.contextmanager
    def round_trips(self) -> Iterator[RoundTrips]:
        """Count the round trips to the database made while the block runs (by anyone)."""
        trips = RoundTrips(postgres=not self.is_sqlite)
        engines = [self.engine.sync_engine]
        engines += [e for e in (self._inline, self._inline_writer) if e is not None]
        hooks = [
            ("before_cursor_execute", trips.statement),
            ("begin", trips.begin),
            ("commit", trips.commit),
            ("rollback", trips.rollback),
        ]
        for engine in engines:
            for name, hook in hooks:
                event.listen(engine, name, hook)
        try:
            yield trips
        finally:
            for engine in engines:
                for name, hook in hooks:
                    event.remove(engine, name, hook)

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def migrate(self) -> None:
        """Upgrade the schema to the newest revision, one replica at a time."""
        async with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                await conn.execute(text(f"SELECT pg_advisory_lock({_MIGRATION_LOCK})"))
                await conn.commit()
            try:
                await conn.run_sync(_upgrade, "head")
                await conn.commit()
            finally:
                if self.dialect == "postgresql":
                    await conn.execute(text(f"SELECT pg_advisory_unlock({_MIGRATION_LOCK})"))
                    await conn.commit()

    async def migrate_to(self, revision: str) -> None:
        """Upgrade to a given revision (tests use it to build an old schema)."""
        async with self.engine.connect() as conn:
            await conn.run_sync(_upgrade, revision)
            await conn.commit()

    async def revision(self) -> str | None:
        async with self.engine.connect() as conn:
            return await conn.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )


class RoundTrips:
    """Round trips to the database, counted from SQLAlchemy's events.

    Each statement is one (a cached prepared statement on asyncpg; an
    ``executemany`` is pipelined), and so is each ``COMMIT`` or ``ROLLBACK``.
    asyncpg sends ``BEGIN`` as a round trip of its own; a connection in
    autocommit (a read on PostgreSQL) sends neither it nor its end.  On
    SQLite, where a "round trip" is a call into a library, not a network
    exchange, statements (``BEGIN IMMEDIATE`` among them) and commits count.
    """

    __slots__ = ("_postgres", "count")

    def __init__(self, *, postgres: bool) -> None:
        self.count = 0
        self._postgres = postgres

    def statement(self, *_args: Any) -> None:
        self.count += 1

    def begin(self, conn: Connection) -> None:
        if self._postgres and _in_transaction(conn):
            self.count += 1

    def commit(self, conn: Connection) -> None:
        if _in_transaction(conn):
            self.count += 1

    def rollback(self, conn: Connection) -> None:
        # SQLite's reader ends each read with a rollback that has nothing to end.
        if self._postgres and _in_transaction(conn):
            self.count += 1


def _in_transaction(conn: Connection) -> bool:
    return conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT"


class InlineConnection:
    """A synchronous SQLite connection behind the async ``execute`` the store calls."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def execute(
        self,
        statement: Executable,
        parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> Any:  # a CursorResult; typed loosely so it unions with AsyncConnection's
        return self._conn.execute(statement, parameters)


#: What the store's query functions take: an async connection or an inline one.
Conn = AsyncConnection | InlineConnection


async def any_row(conn: Conn, by: Any, *where: ColumnElement[bool]) -> bool:
    """Whether a row of *by*'s table matches *where*: the first one found ends the search.

    *by* is the indexed column *where* bounds (a time).  Asking for the rows
    in its order makes the planner walk that index, statistics or none:
    without the order PostgreSQL, expecting many rows to match, reads the
    table from the start, and a million rows of which none match are read
    whole.
    """
    stmt = select(literal(1)).select_from(by.table).where(*where).order_by(by).limit(1)
    return (await conn.execute(stmt)).first() is not None


def is_postgres(conn: Conn) -> bool:
    """Whether *conn* talks to PostgreSQL (else SQLite, inline or deferred)."""
    return isinstance(conn, AsyncConnection) and conn.dialect.name == "postgresql"


def _inline_engine(engine: AsyncEngine, *, writer: bool) -> Engine:
    """A one-connection synchronous engine on the same SQLite file, used on the loop."""
    url = engine.url.set(drivername="sqlite")
    if not writer:
        reader = create_engine(
            url, poolclass=StaticPool, isolation_level="AUTOCOMMIT", pool_reset_on_return=None
        )

        @event.listens_for(reader, "connect")
        def _on_connect_reader(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA query_only=ON")  # this connection can never write
            cur.execute("PRAGMA busy_timeout=1000")
            cur.close()

        return reader
    # Only one coroutine at a time uses it: the caller holds the write lock.
    inline = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})

    @event.listens_for(inline, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=0")  # never wait on the loop
        cur.close()

    @event.listens_for(inline, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return inline


def head_revision() -> str:
    script = ScriptDirectory.from_config(_alembic_config())
    head = script.get_current_head()
    assert head is not None
    return head


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def _upgrade(conn: Connection, revision: str) -> None:
    cfg = _alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


def _make_engine(url: str, *, create: bool) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        if not create and not os.path.isfile(path):
            raise ConfigError(
                f"there is no database at {path}: run this where the gateway runs, with "
                "its OTPGATE_DATA_DIR (or OTPGATE_DATABASE_URL)"
            )
        Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_async_engine(url, pool_size=8, max_overflow=0)
        sync = engine.sync_engine

        @event.listens_for(sync, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control from the driver so BEGIN is ours to choose.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

        @event.listens_for(sync, "begin")
        def _on_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("otpgate_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    engine = create_async_engine(url, pool_size=10, max_overflow=10)

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        # A connection the server closed (a restart, a terminated backend) is
        # known closed to asyncpg as soon as the loop has read its end: the pool
        # replaces it.  This costs no round trip, where SQLAlchemy's pre-ping on
        # asyncpg costs three (BEGIN, a ping, ROLLBACK) before every transaction.
        if dbapi_conn.driver_connection.is_closed():
            raise DisconnectionError("the server closed this connection")

    return engine


#: SQLite's primary result codes for a database that cannot be written for now:
#: SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN.
_SQLITE_TEMPORARY = frozenset({5, 6, 8, 10, 13, 14})
#: PostgreSQL's SQLSTATE classes and codes that say the server is away or out of room:
#: connection exceptions, insufficient resources (disk full...), shutting down or starting.
_PG_TEMPORARY = ("08", "53", "57P01", "57P02", "57P03")


def _temporary(exc: DBAPIError | OSError) -> bool:
    """Whether *exc* says the store is away for now (down, restarting, disk full).

    A constraint violated or a bad statement is not: it stays what it is.
    """
    if isinstance(exc, OSError):
        return True  # the server refused or dropped the connection
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    orig = exc.orig
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if sqlite_code is not None:
        return (sqlite_code & 0xFF) in _SQLITE_TEMPORARY
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith(_PG_TEMPORARY)
    return isinstance(exc, OperationalError) and not isinstance(orig, sqlite3.Error)


def _describe(exc: BaseException) -> str:
    """A one-line reason without the URL (it may hold a password)."""
    orig = getattr(exc, "orig", None) or exc
    return f"{type(orig).__name__}: {str(orig).splitlines()[0] if str(orig) else 'no detail'}"
