"""Group commit: many sessions' rows in one durable transaction.

Each caller hands in its rows and waits; while one transaction is being
committed (and synced to disk), new rows queue up and go together in the
next one.  A caller is answered only after its rows are committed, so an SMTP
``250`` still means "on disk", but the cost of the sync is shared.  A batch
that fails is retried one caller at a time, so one bad row fails only its
own message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError

from ..errors import StoreUnavailable
from ..store.db import Conn, Database

log = logging.getLogger("otpgate.store")

Writer = Callable[[Conn, Sequence[Any]], Awaitable[None]]


class GroupCommitter:
    def __init__(self, db: Database, write: Writer, *, max_batch: int = 500) -> None:
        self._db = db
        self._write = write
        self._max = max_batch
        self._pending: list[tuple[Sequence[Any], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    async def submit(self, rows: Sequence[Any]) -> None:
        """Return once *rows* are durably committed; raise if they could not be."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((rows, fut))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        # The write goes on even if this caller gives up waiting.
        await asyncio.shield(fut)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max], self._pending[self._max :]
            try:
                await self._commit([r for rows, _ in batch for r in rows])
            except StoreUnavailable as exc:
                for _, fut in batch:  # no row is at fault: the store is away
                    _fail(fut, exc)
            except Exception as exc:
                if len(batch) == 1:
                    _log_failure(exc)
                    _fail(batch[0][1], exc)
                    continue
                for rows, fut in batch:  # find the bad one; commit the rest
                    try:
                        await self._commit(rows)
                    except Exception as exc:
                        _log_failure(exc)
                        _fail(fut, exc)
                    else:
                        _done(fut)
            else:
                for _, fut in batch:
                    _done(fut)

    async def _commit(self, rows: Sequence[Any]) -> None:
        async with self._db.write() as conn:
            await self._write(conn, rows)
        self.batches += 1

    async def close(self) -> None:
        """Finish what is queued."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


def _log_failure(exc: Exception) -> None:
    if isinstance(exc, IntegrityError):
        # A unique key refused a row: a redelivered message, reported to its caller.
        log.info("a write was refused by a unique key")
    else:
        log.error("a write failed", exc_info=exc)


def _done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _fail(fut: asyncio.Future[None], exc: Exception) -> None:
    """Fail a caller: with :class:`StoreUnavailable` when the store is away, else RuntimeError."""
    if not fut.done():
        if isinstance(exc, StoreUnavailable):
            fut.set_exception(StoreUnavailable())
        else:
            fut.set_exception(RuntimeError("the write could not be committed"))
