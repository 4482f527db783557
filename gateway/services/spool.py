"""Inbound texts kept on disk while the store is away, and taken in once it is back.

Twilio does not retry a webhook that failed: a text that arrives while the
database cannot be reached (restarting, its disk full) would be lost.  The
SMS adapters keep such a request here instead, in a file of its own under
``<data dir>/spool`` (written, synced and renamed into place before the
webhook is answered), and :meth:`Spool.run` hands each file back to its
adapter once the store answers again, oldest first.  A replay that meets the
store still away leaves the file for the next pass; any other outcome
(stored, a duplicate, refused) removes it.

Each file is sealed like everything secret the gateway keeps: a fresh data
key, wrapped under the master key ring, seals the request.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .. import ids
from ..errors import OtpgateError, StoreUnavailable
from ..vault import Vault

log = logging.getLogger("otpgate.sms")

#: Seconds between passes over the spool while it holds anything.
RETRY_EVERY = 1.0
#: Requests kept at most; past it a webhook is answered 503 (a flood cannot fill the disk).
MAX_KEPT = 10_000
#: The context the spool's data keys and sealed requests are bound to.
_TENANT, _FIELD = "spool", "request"

#: Hands one kept request (its kind and payload) back to its adapter.
Replay = Callable[[str, dict[str, Any]], Awaitable[object]]


class Spool:
    def __init__(self, directory: Path, vault: Vault, *, retry_every: float = RETRY_EVERY) -> None:
        self.directory = directory
        self._vault = vault
        self._retry_every = retry_every
        self._wake = asyncio.Event()

    def keep(self, kind: str, payload: dict[str, Any]) -> None:
        """Write one request durably; raise :class:`StoreUnavailable` if even that fails."""
        if len(self.waiting()) >= MAX_KEPT:
            log.error("the spool is full; a text was refused", extra={"kind": kind})
            raise StoreUnavailable()
        name = f"{time.time_ns():020d}-{ids.new_id('spl')}"
        dek = self._vault.new_data_key()
        plain = json.dumps({"kind": kind, "payload": payload}).encode()
        doc = {
            "key": _b64(self._vault.wrap_data_key(dek, tenant_id=_TENANT, credential_id=name)),
            "sealed": _b64(
                self._vault.seal_field(
                    dek, plain, tenant_id=_TENANT, credential_id=name, field=_FIELD
                )
            ),
        }
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self.directory / f".{name}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, json.dumps(doc).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.directory / name)
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            log.error("cannot keep a text in the spool: %s", exc.strerror or exc)
            raise StoreUnavailable() from None
        log.warning("kept a text in the spool until the database is back", extra={"kind": kind})
        self._wake.set()

    def waiting(self) -> list[Path]:
        """The kept requests, oldest first."""
        try:
            return sorted(p for p in self.directory.iterdir() if not p.name.startswith("."))
        except FileNotFoundError:
            return []

    async def run(self, replay: Replay) -> None:
        """Hand kept requests back to *replay* whenever there are some, until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._retry_every)
            self._wake.clear()
            try:
                await self.replay_all(replay)
            except Exception:
                log.exception("a pass over the spool failed; trying again")

    async def replay_all(self, replay: Replay) -> int:
        """One pass: each kept request, oldest first; how many were taken in."""
        taken = 0
        for path in self.waiting():
            try:
                kind, payload = self._open(path)
            except (OSError, ValueError, OtpgateError) as exc:
                log.error("a spool file does not open; set aside", extra={"file": path.name})
                log.debug("spool file error: %s", exc)
                path.rename(path.with_name("." + path.name + ".bad"))
                continue
            try:
                await replay(kind, payload)
            except StoreUnavailable:
                return taken  # still away: the next pass tries again
            except OtpgateError as exc:
                log.warning(
                    "a kept text was refused when taken in",
                    extra={"kind": kind, "reason": type(exc).__name__},
                )
            path.unlink()
            taken += 1
        if taken:
            log.info("took in texts kept in the spool", extra={"count": taken})
        return taken

    def _open(self, path: Path) -> tuple[str, dict[str, Any]]:
        doc = json.loads(path.read_bytes())
        name = path.name
        dek = self._vault.unwrap_data_key(
            base64.b64decode(doc["key"]), tenant_id=_TENANT, credential_id=name
        )
        plain = self._vault.open_field(
            dek,
            base64.b64decode(doc["sealed"]),
            tenant_id=_TENANT,
            credential_id=name,
            field=_FIELD,
        )
        entry = json.loads(plain)
        return str(entry["kind"]), dict(entry["payload"])


def _b64(blob: bytes) -> str:
    return base64.b64encode(blob).decode()
