"""Wake-ups for agents waiting on a credential's next code.

A waiter takes a ticket *before* it looks in the store, and the ingest path
rings the credential's bell *after* its commit: a code committed between the
look and the wait still wakes the waiter, so nobody sleeps through a code and
nobody polls.  Bells for credentials nobody waits on are not kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from types import TracebackType
from typing import Any


class Ticket:
    """A credential's bell as one waiter holds it: rung once, then replaced.

    A slotted object holding bare futures with their timers, not an
    ``asyncio.Event``: a parked request holds one future and one timer, and
    no ``Event.wait`` coroutine or ``asyncio.timeout`` context of its own.
    """

    __slots__ = ("_rung", "_sleepers")

    def __init__(self) -> None:
        self._rung = False
        self._sleepers: dict[asyncio.Future[None], asyncio.TimerHandle] = {}

    def is_set(self) -> bool:
        return self._rung

    def set(self) -> None:
        self._rung = True
        sleepers, self._sleepers = self._sleepers, {}
        for sleeper, timer in sleepers.items():
            timer.cancel()
            _wake(sleeper)

    def nap(self, seconds: float) -> asyncio.Future[None]:
        """A future done when this ticket is rung or *seconds* have passed, whichever is first.

        Await it, then hand it to :meth:`forget` (in a ``finally``): the
        caller's own frame waits, with no coroutine of the ticket's around
        the future (a long poll is one of thousands parked at once).
        """
        loop = asyncio.get_running_loop()
        sleeper: asyncio.Future[None] = loop.create_future()
        if self._rung:
            sleeper.set_result(None)
        else:
            self._sleepers[sleeper] = loop.call_later(seconds, _wake, sleeper)
        return sleeper

    def forget(self, sleeper: asyncio.Future[None]) -> None:
        """Let go of a nap's future, done or given up (its timer is cancelled)."""
        timer = self._sleepers.pop(sleeper, None)
        if timer is not None:
            timer.cancel()

    async def sleep(self, seconds: float) -> None:
        """Return when this ticket is rung or *seconds* have passed (see :func:`sleep_on`)."""
        sleeper = self.nap(seconds)
        try:
            await sleeper
        finally:
            self.forget(sleeper)


def _wake(sleeper: asyncio.Future[None]) -> None:
    if not sleeper.done():
        sleeper.set_result(None)


def sleep_on(ticket: Ticket, seconds: float) -> Coroutine[Any, Any, None]:
    """Return when *ticket* is rung or *seconds* have passed, whichever comes first.

    The ticket's own coroutine, not one around it: one frame less per parked request.
    """
    return ticket.sleep(seconds)


class _Waiting:
    """Counts one waiter on a key while its block runs (a slotted object, not a generator)."""

    __slots__ = ("_bells", "_counts", "_key")

    def __init__(self, counts: dict[str, int], bells: dict[str, Ticket], key: str) -> None:
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
        self._bells: dict[str, Ticket] = {}
        self._waiting: dict[str, int] = {}
        #: Set when the gateway drains: waiters look once more, then give up (204).
        self.closing = False

    def waiting(self, key: str) -> _Waiting:
        """Count a waiter on *key* for the duration of the ``with`` block."""
        return _Waiting(self._waiting, self._bells, key)

    def ticket(self, key: str) -> Ticket:
        """The event the next ring of *key* sets; take it before checking the store."""
        bell = self._bells.get(key)
        if bell is None:
            bell = self._bells[key] = Ticket()
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
