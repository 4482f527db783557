"""Webhook endpoints and the delivery worker (Standard Webhooks signing).

SKELETON: to be completed (endpoint CRUD, rotation, signing, the durable
delivery worker).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiohttp.abc import AbstractResolver

from ..metrics import Metrics
from ..store.db import Database
from ..vault import Vault


class WebhookService:
    def __init__(
        self,
        db: Database,
        vault: Vault,
        metrics: Metrics,
        *,
        allow_private: bool,
        resolver: AbstractResolver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._vault = vault
        self._metrics = metrics
        self._allow_private = allow_private
        self._resolver = resolver
        self._clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Deliveries were queued: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """The delivery worker: runs until cancelled."""
        await asyncio.Event().wait()

    async def close(self) -> None:
        pass
