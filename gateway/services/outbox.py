"""One runner for the outboxes: forwarded copies and webhook deliveries.

Work that must leave the gateway because of a commit (a copy of a message for
a person, an event for a webhook endpoint) is queued as rows in the same
transaction as its cause, and sent afterwards by an :class:`Outbox` running
one :class:`Sender`:

- It looks when woken (:meth:`Outbox.wake`, after a commit that queued
  work), when an attempt ends and there is room again, and otherwise every
  ``poll`` seconds; however often it is woken, at most every ``min_gap``
  seconds, so a burst of commits costs a few reads, not one each.
- The sender claims due rows with a lease (the rules of
  :mod:`gateway.store.outbox`), at most as many as there is room for: it
  makes ``in_flight`` attempts at once.
- Each attempt records its own outcome: done, retried later (when, and
  when to give up, is a :class:`Backoff`), or given up.  One that raises is
  logged, and its lease lapses so that it is made again.
- Every ``recover_every`` seconds the sender tidies what a process that
  died left behind (a forwarded copy interrupted while it was being sent).
- :meth:`Outbox.stop` takes no new work; the attempts under way get the
  sender's ``drain_timeout`` to finish (each is bounded by its own
  timeouts), the ones still running then are cancelled, and the leases of
  those cut short are given back, so that the next start or another
  replica takes them up at once.

The senders keep what truly differs: what a row holds, how it is sent, what
counts as taken, and, for forwarded copies, the ``sending`` mark committed
before the step that cannot be taken back, which makes them at most once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

#: Seconds between looks at the outbox when nothing wakes it.
POLL = 1.0
#: Shortest time between two looks, however often the outbox is woken.
MIN_GAP = 0.05
#: Seconds between two calls of :meth:`Sender.recover`.
RECOVER_EVERY = 5.0


class Job(Protocol):
    """A claimed row: its id (the lease's key) and the number of the attempt it gets."""

    @property
    def id(self) -> str: ...

    @property
    def attempt(self) -> int: ...


J = TypeVar("J", bound=Job)


@dataclass(frozen=True, slots=True)
class Backoff:
    """When to try again after a failed attempt, and when to stop trying.

    The wait after the n-th failed attempt is drawn at random (full jitter)
    under ``ceilings[n - 1]`` (the last one repeats), and above ``floor``
    times it, so that a retry never follows its failure at once.  Work is
    given up after ``max_attempts`` attempts, or when its next attempt would
    come more than ``max_age`` seconds after it was queued.
    """

    ceilings: tuple[float, ...]
    floor: float
    max_attempts: int
    max_age: float
    _random: random.SystemRandom = field(
        default_factory=random.SystemRandom, compare=False, repr=False
    )

    def next_attempt(self, attempt: int, queued_at: float, now: float) -> float | None:
        """When to make the attempt after number *attempt*; None: give the work up."""
        if attempt >= self.max_attempts:
            return None
        ceiling = self.ceilings[min(attempt, len(self.ceilings)) - 1]
        at = now + self._random.uniform(ceiling * self.floor, ceiling)
        return None if at - queued_at > self.max_age else at


def doubling(first: float, *, cap: float, count: int) -> tuple[float, ...]:
    """*count* ceilings for a :class:`Backoff`: *first*, twice that, and so on, up to *cap*."""
    return tuple(min(cap, first * 2**n) for n in range(count))


Attempt = Callable[[J], Awaitable[None]]


class Sender(ABC, Generic[J]):
    """What an :class:`Outbox` runs: claims due rows and makes one attempt at each."""

    #: Names the outbox in log lines; the runner logs to ``otpgate.<name>``.
    name: str
    #: Attempts made at once.
    in_flight: int
    #: Seconds a claimed row is held (well above the time one attempt may take).
    lease: float
    #: Seconds the attempts under way get to finish when the outbox stops.
    drain_timeout: float

    @abstractmethod
    def open(self) -> AbstractAsyncContextManager[Attempt[J]]:
        """Hold what the attempts need for the run's duration; yield the function making one."""

    @abstractmethod
    async def claim(self, room: int) -> Sequence[J]:
        """Lease up to *room* due rows; each counts the attempt it is about to get."""

    @abstractmethod
    async def release(self, ids: Sequence[str]) -> None:
        """Give back the leases of attempts cut short on shutdown."""

    async def recover(self) -> None:
        """Tidy what a process that died left behind; most outboxes need nothing."""


class Outbox(Generic[J]):
    """Runs one :class:`Sender` until stopped: wake, claim, attempt side by side, drain."""

    def __init__(
        self,
        sender: Sender[J],
        *,
        poll: float = POLL,
        min_gap: float = MIN_GAP,
        recover_every: float = RECOVER_EVERY,
    ) -> None:
        self.sender = sender
        #: Seconds between looks when nothing wakes the outbox.
        self._poll = poll
        self._min_gap = min_gap
        self._recover_every = recover_every
        self._log = logging.getLogger(f"otpgate.{sender.name}")
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def wake(self) -> None:
        """Work was queued: look now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Take no new work; :meth:`run` returns once the attempts under way end."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Send due work until :meth:`stop` (or until cancelled)."""
        in_flight: set[asyncio.Task[None]] = set()
        leased: set[str] = set()  # claimed, and no outcome recorded yet
        async with self.sender.open() as attempt:
            try:
                await self._serve(attempt, in_flight, leased)
                if in_flight:
                    await asyncio.wait(in_flight, timeout=self.sender.drain_timeout)
            finally:
                for task in in_flight:
                    task.cancel()
                await asyncio.gather(*in_flight, return_exceptions=True)
                await self._release(leased)

    async def _serve(
        self, attempt: Attempt[J], in_flight: set[asyncio.Task[None]], leased: set[str]
    ) -> None:
        limit = self.sender.in_flight
        last_look = 0.0
        next_recovery = 0.0
        while not self._stopping.is_set():
            if time.monotonic() >= next_recovery:
                await self._recover()
                next_recovery = time.monotonic() + self._recover_every
            room = limit - len(in_flight)
            if room > 0:
                await asyncio.sleep(max(0.0, last_look + self._min_gap - time.monotonic()))
                if self._stopping.is_set():
                    break
                last_look = time.monotonic()
                self._wake.clear()
                for job in await self._claim(room):
                    leased.add(job.id)
                    task = asyncio.create_task(self._attempt(attempt, job, leased))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
            # Look again when woken (if there is room), when an attempt ends, or at the poll.
            woken = asyncio.create_task(self._wake.wait())
            waits = {*in_flight, woken} if len(in_flight) < limit else set(in_flight)
            try:
                await asyncio.wait(waits, timeout=self._poll, return_when="FIRST_COMPLETED")
            finally:
                woken.cancel()

    async def _claim(self, room: int) -> Sequence[J]:
        try:
            return await self.sender.claim(room)
        except Exception:
            self._log.exception(
                "the outbox could not be read; trying again", extra={"outbox": self.sender.name}
            )
            return []

    async def _recover(self) -> None:
        try:
            await self.sender.recover()
        except Exception:
            self._log.exception(
                "the outbox could not be tidied; trying again", extra={"outbox": self.sender.name}
            )

    async def _attempt(self, attempt: Attempt[J], job: J, leased: set[str]) -> None:
        try:
            await attempt(job)
        except Exception:
            # No outcome was recorded: the lease lapses and the attempt is made again.
            self._log.exception(
                "an outbox attempt failed unexpectedly",
                extra={"outbox": self.sender.name, "job": job.id, "attempt": job.attempt},
            )
        leased.discard(job.id)

    async def _release(self, leased: set[str]) -> None:
        """On shutdown, give back the leases of attempts cut short, so they go out at once."""
        if not leased:
            return
        try:
            await self.sender.release(sorted(leased))
        except Exception:
            self._log.warning(
                "could not give back the outbox's leases; they lapse by themselves",
                extra={
                    "outbox": self.sender.name,
                    "count": len(leased),
                    "lease_seconds": self.sender.lease,
                },
            )
