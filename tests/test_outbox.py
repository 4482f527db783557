"""The outbox runner's claim and shutdown rules, with a sender that keeps its rows in memory.

The two real senders (forwarded copies, webhook deliveries) are tested end to
end in ``test_forwards.py`` and ``test_webhooks.py``; here each rule of the
runner is pinned on its own, without a database or a network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import pytest

from gateway.services.outbox import Attempt, Backoff, Outbox, Sender, doubling

from .helpers import eventually


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    attempt: int = 1


class MemorySender(Sender[Row]):
    """Rows in a list; each attempt waits until ``gate`` opens, then records the row as done."""

    name = "test"
    lease = 60.0

    def __init__(self, *rows: str, in_flight: int = 2, drain_timeout: float = 5.0) -> None:
        self.in_flight = in_flight
        self.drain_timeout = drain_timeout
        self.queue = [Row(r) for r in rows]
        self.gate = asyncio.Event()
        self.claims = 0
        self.failing_claims = 0
        self.running = 0
        self.most_running = 0
        self.done: list[str] = []
        self.released: list[str] = []
        self.recoveries = 0
        self.recoveries_before_first_claim: int | None = None
        self.closed = False

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[Attempt[Row]]:
        try:
            yield self._attempt
        finally:
            self.closed = True

    async def claim(self, room: int) -> Sequence[Row]:
        self.claims += 1
        if self.recoveries_before_first_claim is None:
            self.recoveries_before_first_claim = self.recoveries
        if self.failing_claims:
            self.failing_claims -= 1
            raise RuntimeError("the store is down")
        taken, self.queue = self.queue[:room], self.queue[room:]
        return taken

    async def release(self, ids: Sequence[str]) -> None:
        self.released.extend(ids)

    async def recover(self) -> None:
        self.recoveries += 1

    async def _attempt(self, row: Row) -> None:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.gate.wait()
            if row.id.startswith("boom"):
                raise RuntimeError("a bug in the sender")
            self.done.append(row.id)
        finally:
            self.running -= 1


def holds(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    """*check* as the async condition :func:`eventually` waits on."""

    async def holding() -> bool:
        return check()

    return holding


@contextlib.asynccontextmanager
async def running(sender: MemorySender, **options: float) -> AsyncIterator[Outbox[Row]]:
    """Run an outbox for *sender* during the block; then stop it and let its attempts end."""
    outbox = Outbox(sender, **options)
    task = asyncio.create_task(outbox.run())
    try:
        yield outbox
    finally:
        outbox.stop()
        sender.gate.set()
        await asyncio.wait_for(task, 10)


async def test_attempts_run_side_by_side_up_to_the_limit_and_a_free_slot_is_filled_at_once() -> (
    None
):
    """Never more than in_flight attempts at once; one ending makes room without the poll."""
    sender = MemorySender("a", "b", "c", "d", "e", in_flight=2)
    async with running(sender, poll=30.0):
        await eventually(holds(lambda: sender.running == 2))
        assert [r.id for r in sender.queue] == ["c", "d", "e"]
        sender.gate.set()
        await eventually(holds(lambda: len(sender.done) == 5))
    assert sender.most_running == 2
    assert sorted(sender.done) == ["a", "b", "c", "d", "e"]


async def test_wake_looks_now_rather_than_at_the_poll() -> None:
    """Work queued after a look is claimed as soon as the outbox is woken."""
    sender = MemorySender()
    sender.gate.set()
    async with running(sender, poll=30.0) as outbox:
        await eventually(holds(lambda: sender.claims == 1))
        sender.queue.append(Row("late"))
        outbox.wake()
        await eventually(holds(lambda: sender.done == ["late"]), within=5.0)


async def test_stop_lets_the_attempts_under_way_finish_and_takes_no_new_work() -> None:
    """After stop, running attempts end normally, nothing more is claimed, and nothing released."""
    sender = MemorySender("a", "b", "c", in_flight=2)
    outbox = Outbox(sender, poll=0.01)
    task = asyncio.create_task(outbox.run())
    await eventually(holds(lambda: sender.running == 2))
    outbox.stop()
    claims = sender.claims
    sender.gate.set()
    await asyncio.wait_for(task, 5)
    assert sorted(sender.done) == ["a", "b"]
    assert [r.id for r in sender.queue] == ["c"]
    assert sender.claims == claims
    assert sender.released == []
    assert sender.closed


async def test_attempts_cut_short_on_stop_give_their_leases_back() -> None:
    """Attempts still running after the drain timeout are cancelled and their rows released."""
    sender = MemorySender("a", "b", in_flight=2, drain_timeout=0.1)
    outbox = Outbox(sender, poll=0.01)
    task = asyncio.create_task(outbox.run())
    await eventually(holds(lambda: sender.running == 2))
    outbox.stop()
    await asyncio.wait_for(task, 5)
    assert sender.done == []
    assert sender.released == ["a", "b"]
    assert sender.running == 0
    assert sender.closed


async def test_cancelling_the_runner_gives_the_leases_back_too() -> None:
    """A runner cancelled outright (no stop) still cancels its attempts and releases their rows."""
    sender = MemorySender("a")
    task = asyncio.create_task(Outbox(sender, poll=0.01).run())
    await eventually(holds(lambda: sender.running == 1))
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert sender.released == ["a"]
    assert sender.closed


async def test_a_claim_that_fails_is_logged_and_tried_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A store error while claiming is one logged line; the next look claims the row."""
    caplog.set_level(logging.ERROR, logger="otpgate.test")
    sender = MemorySender("a")
    sender.failing_claims = 1
    sender.gate.set()
    async with running(sender, poll=0.01):
        await eventually(holds(lambda: sender.done == ["a"]))
    messages = [r.getMessage() for r in caplog.records if r.name == "otpgate.test"]
    assert messages == ["the outbox could not be read; trying again"]


async def test_an_attempt_that_raises_is_logged_and_its_lease_left_to_lapse(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unexpected error in an attempt is logged with the row's id; its lease is not released."""
    caplog.set_level(logging.ERROR, logger="otpgate.test")
    sender = MemorySender("boom-1", "ok")
    sender.gate.set()
    async with running(sender, poll=0.01):
        await eventually(holds(lambda: sender.done == ["ok"]))
        await eventually(holds(lambda: any(r.name == "otpgate.test" for r in caplog.records)))
    [record] = [r for r in caplog.records if r.name == "otpgate.test"]
    assert record.getMessage() == "an outbox attempt failed unexpectedly"
    assert record.job == "boom-1"  # type: ignore[attr-defined]
    assert sender.released == []


async def test_recovery_runs_first_and_then_every_interval() -> None:
    """The sender tidies up before its first claim, and again every recover_every seconds."""
    sender = MemorySender()
    async with running(sender, poll=0.01, recover_every=0.05):
        await eventually(holds(lambda: sender.recoveries >= 3))
    assert sender.recoveries_before_first_claim == 1


def test_backoff_draws_under_each_ceiling_and_above_its_floor() -> None:
    """The n-th wait lies between floor x ceiling and the ceiling; the last ceiling repeats."""
    backoff = Backoff((1.0, 10.0), floor=0.5, max_attempts=10, max_age=1e9)
    for _ in range(200):
        first = backoff.next_attempt(1, 0.0, 100.0)
        later = backoff.next_attempt(7, 0.0, 100.0)
        assert first is not None and 100.5 <= first <= 101.0
        assert later is not None and 105.0 <= later <= 110.0


def test_backoff_gives_up_after_max_attempts_or_past_max_age() -> None:
    """No next attempt after max_attempts, nor one that would come after max_age."""
    backoff = Backoff((1.0,), floor=0.5, max_attempts=3, max_age=100.0)
    assert backoff.next_attempt(2, 0.0, 10.0) is not None
    assert backoff.next_attempt(3, 0.0, 10.0) is None
    assert backoff.next_attempt(1, 0.0, 99.6) is None  # the retry would be at 100.1 s or later
    assert backoff.next_attempt(1, 0.0, 98.0) is not None


def test_doubling_ceilings_stop_at_the_cap() -> None:
    """Forwarded copies wait 5 s, 10 s, 20 s, ... after failures, never more than an hour."""
    assert doubling(5.0, cap=3600.0, count=15) == (
        5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0, 1280.0, 2560.0,
        3600.0, 3600.0, 3600.0, 3600.0, 3600.0,
    )  # fmt: skip
