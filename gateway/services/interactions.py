"""User-driven submission: a person gives the code an agent is waiting for.

SKELETON: to be completed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..store.db import Database
from ..vault import Vault
from .waiters import Bells


class InteractionService:
    def __init__(
        self,
        db: Database,
        vault: Vault,
        bells: Bells,
        *,
        ttl: int,
        public_url: str,
        events_queued: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._vault = vault
        self._bells = bells
        self._ttl = ttl
        self._public_url = public_url
        self._events_queued = events_queued
        self._clock = clock

    async def sweep(self) -> int:
        """Mark expired interactions and queue ``interaction.expired``; how many."""
        return 0
