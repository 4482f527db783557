"""A small in-memory rate limiter: a token bucket per key, bounded in size."""

from __future__ import annotations

import asyncio
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

    def wait(self, key: str) -> float:
        """Seconds until *key*'s bucket holds a token again (0 when it holds one now)."""
        now = self.clock()
        tokens, last = self._buckets.get(key, (self._rate, now))
        tokens = min(self._rate, tokens + (now - last) * self._refill)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self._refill


class FailedAttempts(RateLimiter):
    """Failed authentications per client address: API keys, submit tokens, sign-ins.

    Only failures take a token from the address's bucket.  What an address
    presents is always checked, so a valid key is never slowed, whoever else
    shares its address; but once the bucket is empty each further failure is
    answered 429 only after :attr:`hold` seconds (at most the wait for the
    next token).  With the per-address connection cap this bounds how fast
    one address can guess, instead of merely relabelling its 401s.
    """

    #: Seconds a refusal over the allowance is held before it is answered.
    hold: float = 5.0

    def failed(self, client: str) -> None:
        self.allow(client)

    async def refuse(self, client: str, over: float) -> float:
        """Hold a refusal that came over the allowance; the seconds to send in Retry-After."""
        await asyncio.sleep(min(over, self.hold))
        return max(self.wait(client), 1.0)
