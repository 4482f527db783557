"""The gateway's clock, as seen from here: a safe lower bound on its current time.

``since=`` compares against the gateway's own clock (it stamps ``received_at``
when a mail or text arrives), so a mark taken with this machine's clock would
be wrong by however far the two clocks disagree: too early lets a stale code
through, too late makes an agent wait for a code that already came.

Every answer carries an HTTP ``Date`` header: the gateway's time, floored to
the second, taken at some moment between the request leaving (``sent``, by
this machine's monotonic clock) and the answer arriving (``received``).  So
the offset ``gateway time - monotonic time`` lies in
``[date - received, date + 1 - sent)``.  Each answer narrows that interval
(they are intersected); an answer that contradicts it means a clock was
stepped, and the interval restarts from that answer.  ``now()`` is the
monotonic time plus the interval's low end: never later than the gateway's
true time, and after a few answers within a round trip or so of it.

Why not the alternatives: this machine's clock minus a margin is wrong when
the clocks differ by more than the margin (containers and CI runners do);
asking the gateway for its time would cost a request the ``Date`` header
already gives for free.  A proxy that rewrites ``Date`` (nginx sets its own)
makes this the proxy's clock, normally NTP-close to the gateway's; the
``margin`` of ``expect_code`` absorbs that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

#: Subtracted from this machine's clock before any answer came (never used by
#: ``expect_code``, which always asks the gateway first).
UNOBSERVED_MARGIN = 2.0


class ServerClock:
    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._monotonic = monotonic
        self._wall = wall
        self._low: float | None = None
        self._high: float | None = None

    def observe(self, date_header: str | None, sent: float, received: float) -> None:
        """Take in one answer's ``Date`` header, with the monotonic times around its request."""
        if not date_header:
            return
        try:
            date = parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError, IndexError):
            return
        low, high = date - received, date + 1.0 - sent
        if self._low is None or self._high is None or low > self._high or high < self._low:
            self._low, self._high = low, high  # the first answer, or a clock was stepped
        else:
            self._low, self._high = max(self._low, low), min(self._high, high)

    @property
    def observed(self) -> bool:
        return self._low is not None

    @property
    def uncertainty(self) -> float | None:
        """Seconds the gateway's time may be later than ``now()``; None before any answer."""
        if self._low is None or self._high is None:
            return None
        return self._high - self._low

    def now(self) -> float:
        """UNIX seconds no later than the gateway's current time."""
        if self._low is None:
            return self._wall() - UNOBSERVED_MARGIN
        return self._monotonic() + self._low
