"""Agents waiting on a credential, recorded where every replica can see them.

A long poll that parks (nothing to hand out yet) records itself in the store
until it ends, so that a code arriving on any replica knows somebody waits
for it; otherwise the code is ``code.unsolicited`` (see ``store.presence``).
Only parking costs a write: a request answered at once records nothing.
"""

from __future__ import annotations

import logging

from .. import ids
from ..store import presence as presence_rows
from ..store.db import Database

log = logging.getLogger("otpgate.presence")


class Waits:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def start(self, credential_id: str, until: float) -> str:
        """Record a wait on *credential_id* until *until*; its id, for :meth:`end`."""
        wait_id = ids.new_id(ids.CODE_WAIT)
        async with self._db.write() as conn:
            await presence_rows.add_wait(conn, wait_id, credential_id, until)
        return wait_id

    async def end(self, wait_id: str) -> None:
        """Remove a wait; on failure it lapses by itself at its end time."""
        try:
            async with self._db.write() as conn:
                await presence_rows.end_wait(conn, wait_id)
        except Exception:
            log.warning("could not remove a finished wait; it lapses at its end time")

    async def sweep(self, now: float) -> int:
        async with self._db.write() as conn:
            return await presence_rows.forget_waits(conn, now)
