"""Forwarding: copies of each message reaching a credential, sent to people.

SKELETON: to be completed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ..store.db import Database
from ..vault import Vault
from .numbers import SmsSender


class ForwardService:
    def __init__(
        self,
        db: Database,
        vault: Vault,
        *,
        relay: str | None,
        mail_from: str,
        sms: SmsSender | None,
        sms_from: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._vault = vault
        self._relay = relay
        self._mail_from = mail_from
        self._sms = sms
        self._sms_from = sms_from
        self._clock = clock
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        await asyncio.Event().wait()
