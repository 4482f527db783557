"""Wake-ups for agents waiting on a credential's next code.

A waiter takes a ticket *before* it looks in the store, and the ingest path
rings the credential's bell *after* its commit: a code committed between the
look and the wait still wakes the waiter, so nobody sleeps through a code and
nobody polls.  Bells for credentials nobody waits on are not kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType


async def sleep_on(ticket: asyncio.Event, seconds: float) -> None:
    """Return when *ticket* is set or *seconds* have passed, whichever comes first.

    ``asyncio.timeout`` rather than ``wait_for``: on Python 3.11 ``wait_for``
    wraps the wait in a task of its own, about 2 KB for each parked request.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await ticket.wait()


class _Waiting:
    """Counts one waiter on a key while its block runs (a slotted object, not a generator)."""

    __slots__ = ("_bells", "_counts", "_key")

    def __init__(self, counts: dict[str, int], bells: dict[str, asyncio.Event], key: str) -> None:
        self._counts, self._bells, self._key = counts, bells, key

    def __enter__(self) -> None:
        self._counts[self._key] = self._counts.get(self._key, 0) + 1

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        left = self._counts[self._key] - 1
        if left:
            self._counts[self._key] = left
        else:
            del self._counts[self._key]
            self._bells.pop(self._key, None)


class Bells:
    def __init__(self) -> None:
        self._bells: dict[str, asyncio.Event] = {}
        self._waiting: dict[str, int] = {}
        #: Set when the gateway drains: waiters look once more, then give up (204).
        self.closing = False

    def waiting(self, key: str) -> _Waiting:
        """Count a waiter on *key* for the duration of the ``with`` block."""
        return _Waiting(self._waiting, self._bells, key)

    def ticket(self, key: str) -> asyncio.Event:
        """The event the next ring of *key* sets; take it before checking the store."""
        bell = self._bells.get(key)
        if bell is None:
            bell = self._bells[key] = asyncio.Event()
        return bell

    def ring(self, key: str) -> None:
        """Wake everyone holding a ticket for *key*; later tickets wait for the next ring."""
        bell = self._bells.pop(key, None)
        if bell is not None:
            bell.set()

    def close(self) -> None:
        """The gateway is shutting down: wake every waiter, for the last time."""
        self.closing = True
        self.ring_all()

    def ring_all(self) -> None:
        """Wake every waiter: each looks at the store again (after a lost connection)."""
        bells, self._bells = self._bells, {}
        for bell in bells.values():
            bell.set()

    def waiters(self, key: str) -> int:
        return self._waiting.get(key, 0)

    def total(self) -> int:
        """Waiters on every key (for the metrics)."""
        return sum(self._waiting.values())
