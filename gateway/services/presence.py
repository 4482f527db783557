"""Agents waiting on a credential, recorded where every replica can see them.

A long poll that parks (nothing to hand out yet) is recorded in the store
until it ends, so that a code arriving on any replica knows somebody waits
for it; otherwise the code is ``code.unsolicited`` (see ``store.presence``).
Only parking costs a write, and only the first on each credential: the
waits on one credential in this replica share one record, kept until the
last of them ends.  Ten thousand agents on five hundred credentials make
five hundred records, not ten thousand (each a durable write to park and
another to leave).  A record's end time is rounded up by :data:`SLACK`, so
that the later waits that keep arriving rarely need to move it; it matters
only if this replica dies, and then the record lapses by itself.
"""

from __future__ import annotations

import asyncio
import logging

from .. import ids
from ..store import presence as presence_rows
from ..store.db import Database

log = logging.getLogger("otpgate.presence")

#: Seconds a shared record outlasts the wait that set its end time.
SLACK = 60.0


class Parked:
    """This replica's record of the waits on one credential."""

    __slots__ = ("count", "credential_id", "id", "until")

    def __init__(self, credential_id: str, until: float) -> None:
        self.credential_id = credential_id
        self.id = ids.new_id(ids.CODE_WAIT)
        self.until = until
        self.count = 1


class Waits:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._records: dict[str, Parked] = {}
        self._removing: set[asyncio.Task[None]] = set()

    async def start(self, credential_id: str, until: float) -> Parked:
        """Record a wait on *credential_id* until *until*; the handle to pass to :meth:`end`."""
        record = self._records.get(credential_id)
        if record is not None:
            record.count += 1
            if until > record.until:
                record.until = until + SLACK
                try:
                    async with self._db.write() as conn:
                        await presence_rows.move_wait(conn, record.id, record.until)
                except BaseException:
                    await self.end(record)
                    raise
            return record
        record = self._records[credential_id] = Parked(credential_id, until + SLACK)
        try:
            async with self._db.write() as conn:
                await presence_rows.add_wait(conn, record.id, credential_id, record.until)
        except BaseException:
            await self.end(record)
            raise
        return record

    async def end(self, record: Parked) -> None:
        """One wait ended; the record goes with the last of them.

        On failure the record lapses by itself at its end time.
        """
        if self._last(record):
            await self._remove(record.id)

    def end_soon(self, record: Parked) -> None:
        """As :meth:`end`, the record's removal left to run after the caller answers.

        A wait that got its code hands it out at once: the agent does not wait
        for this durable write (a commit, on PostgreSQL a flush of the WAL).
        The record is already gone from this replica's count; its row, for a
        few milliseconds more, only makes a code arriving then count as awaited.
        """
        if self._last(record):
            task = asyncio.create_task(self._remove(record.id))
            self._removing.add(task)
            task.add_done_callback(self._removing.discard)

    async def settle(self) -> None:
        """Finish the removals :meth:`end_soon` started (before the store closes)."""
        while self._removing:
            await asyncio.gather(*self._removing, return_exceptions=True)

    def _last(self, record: Parked) -> bool:
        """Count one wait out; whether it was the record's last."""
        record.count -= 1
        if record.count:
            return False
        if self._records.get(record.credential_id) is record:
            del self._records[record.credential_id]
        return True

    async def _remove(self, record_id: str) -> None:
        try:
            async with self._db.write() as conn:
                await presence_rows.end_wait(conn, record_id)
        except Exception:
            log.warning("could not remove a finished wait; it lapses at its end time")

    def records(self) -> int:
        """How many credentials this replica has waits recorded for."""
        return len(self._records)

    async def sweep(self, now: float) -> int:
        return await self._db.sweep(
            lambda conn: presence_rows.any_wait_over(conn, now),
            lambda conn: presence_rows.forget_waits(conn, now),
        )
