"""A small in-memory rate limiter: a token bucket per key, bounded in size."""

from __future__ import annotations

import time
from collections.abc import Callable

#: Buckets kept at most; beyond this the oldest half is dropped (a flood of
#: distinct keys cannot grow memory without bound).
MAX_KEYS = 100_000


class RateLimiter:
    """Allow ``rate`` events per ``per`` seconds for each key, with bursts up to ``rate``."""

    def __init__(
        self, rate: int, per: float = 60.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = float(rate)
        self._refill = rate / per
        #: Where the time comes from (a test may hold it still).
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str) -> bool:
        """Take one token from *key*'s bucket; False when it is empty."""
        now = self.clock()
        tokens, last = self._buckets.pop(key, (self._rate, now))
        tokens = min(self._rate, tokens + (now - last) * self._refill)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        if len(self._buckets) >= MAX_KEYS:
            for old in list(self._buckets)[: MAX_KEYS // 2]:
                del self._buckets[old]
        self._buckets[key] = (tokens, now)  # re-inserted: dict order is least recent first
        return allowed
