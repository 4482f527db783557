"""A small in-memory rate limiter: a token bucket per key, bounded in size."""

from __future__ import annotations

import hmac
import os
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


#: Marks of secrets that worked, kept at most (the oldest half is dropped beyond).
MAX_GOOD = 100_000


class FailedAttempts(RateLimiter):
    """Failed authentications per client address: API keys, submit tokens, sign-ins.

    Only failures take a token from the address's bucket; once it is empty,
    the address is refused (429) before anything it presents is checked, so
    guessing goes no faster than the refill.  A secret that worked before
    (from any address, since this process started) is still checked and
    served: a valid key is never slowed by the guesses of others sharing its
    address.  Secrets are remembered only as an HMAC under a key made at start.
    """

    def __init__(
        self, rate: int, per: float = 60.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(rate, per, clock=clock)
        self._salt = os.urandom(32)
        self._good: dict[bytes, None] = {}

    def _mark(self, secret: str) -> bytes:
        return hmac.digest(self._salt, secret.encode("utf-8", "surrogatepass"), "sha256")

    def retry_after(self, client: str, secret: str) -> float | None:
        """None when *client* may present *secret* now; else the seconds it must wait."""
        wait = self.wait(client)
        if wait <= 0 or self._mark(secret) in self._good:
            return None
        return wait

    def failed(self, client: str) -> None:
        self.allow(client)

    def succeeded(self, secret: str) -> None:
        mark = self._mark(secret)
        if mark in self._good:
            return
        if len(self._good) >= MAX_GOOD:
            for old in list(self._good)[: MAX_GOOD // 2]:
                del self._good[old]
        self._good[mark] = None
