"""Messages received per day and channel, for the charts of the authentication center.

The counts are written with the messages themselves (``store.inbound``);
this reads them back as a fixed run of days (a day without messages is a
zero, not a gap) and drops the days no chart shows any more.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from ..store import counts as count_rows
from ..store.db import Database
from ..timestamps import utc_day

#: Days of counts kept: the charts show 30.
KEEP_DAYS = 35
_DAY = 86400


@dataclass(frozen=True, slots=True)
class DayCount:
    """One channel's messages on one day, and how many of them held a code."""

    messages: int = 0
    codes: int = 0


@dataclass(frozen=True, slots=True)
class DailyCounts:
    """Counts for each of the last ``len(days)`` days (oldest first), per channel."""

    days: list[str]
    #: channel -> day -> counts; a channel is present when it has a message in the range.
    channels: dict[str, dict[str, DayCount]]

    def total(self, channel: str | None = None) -> DayCount:
        """All messages (and codes) of the range, of one channel or of all."""
        messages = codes = 0
        for name, per_day in self.channels.items():
            if channel is None or name == channel:
                for count in per_day.values():
                    messages += count.messages
                    codes += count.codes
        return DayCount(messages, codes)

    def per_day(self, channel: str | None = None) -> list[DayCount]:
        """One count per day of the range (summed over channels unless one is named)."""
        out = []
        for day in self.days:
            messages = codes = 0
            for name, per_day in self.channels.items():
                if channel is None or name == channel:
                    count = per_day.get(day)
                    if count is not None:
                        messages += count.messages
                        codes += count.codes
            out.append(DayCount(messages, codes))
        return out


def last_days(now: float, days: int) -> list[str]:
    """The UTC days of the *days* days ending today, oldest first."""
    return [utc_day(now - offset * _DAY) for offset in range(days - 1, -1, -1)]


class MessageCounts:
    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    async def daily(
        self,
        tenant_id: str,
        *,
        credential_id: str | None = None,
        only: Collection[str] | None = None,
        days: int = 30,
    ) -> DailyCounts:
        """The tenant's messages per channel for each of the last *days*.

        *credential_id* counts one credential's; *only* those of some (a key limited to them).
        """
        run = last_days(self._clock(), days)
        async with self._db.read() as conn:
            rows = await count_rows.daily(
                conn, tenant_id, since=run[0], credential_id=credential_id, only=only
            )
        channels: dict[str, dict[str, DayCount]] = {}
        for row in rows:
            channels.setdefault(row.channel, {})[row.day] = DayCount(
                int(row.messages), int(row.codes)
            )
        return DailyCounts(run, channels)

    async def sweep(self) -> int:
        """Forget the days older than :data:`KEEP_DAYS`."""
        before = utc_day(self._clock() - KEEP_DAYS * _DAY)
        return await self._db.sweep(
            lambda conn: count_rows.any_before(conn, before=before),
            lambda conn: count_rows.forget(conn, before=before),
        )
