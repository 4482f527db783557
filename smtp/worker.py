"""The ingest worker: parsing, extraction, sealing and the durable commit, in a second process.

The SMTP listener runs in the gateway's own process and event loop, but the
CPU-heavy part of taking a mail (MIME parsing, code extraction, encryption,
the group commit) runs here, on another core: the listener stays free to
serve sessions and HTTP, and a hostile mail that takes long to parse never
stalls the API.  The listener hands each mail over a private socket pair and
answers ``250`` only when the worker reports the code committed; if the
worker fails or dies, the mail is answered ``451`` (the sender retries) and
the worker is started again.

Frames on the socket are a 4-byte big-endian length and a pickle.  Pickle is
safe here: both ends are this program, over a socket pair nobody else holds.

    gateway -> worker   first frame: the Settings; then (id, raw, mail_from, routes)
    worker  -> gateway  (id, outcomes) or (id, None) when the mail could not be stored
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import socket
import struct
import sys
from collections.abc import Sequence
from typing import Any

from gateway.errors import ConfigError
from gateway.logs import configure
from gateway.metrics import Metrics
from gateway.services.inbound import InboundService, Message, Route
from gateway.services.waiters import Bells
from gateway.settings import Settings
from gateway.store.db import Database
from gateway.vault import KeyRing, Vault

from .parse import parse_message

log = logging.getLogger("otpgate.smtp")

_HEADER = struct.Struct(">I")
#: Seconds a mail may take in the worker before the sender is told to retry.
INGEST_TIMEOUT = 30.0
#: Seconds to wait before starting a worker that died.
RESTART_DELAY = 1.0


class WorkerUnavailable(Exception):
    """The worker is not running or failed to store a mail."""


async def _read_frame(reader: asyncio.StreamReader) -> Any:
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    return pickle.loads(await reader.readexactly(size))  # noqa: S301 - our own process


def _frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


def message_from_mail(raw: bytes, mail_from: str) -> Message:
    """Parse a raw mail into the core's Message (the From header's address wins)."""
    mail = parse_message(raw)
    sender = mail.sender or mail_from.lower()
    return Message(
        channel="email",
        sender=sender,
        sender_domain=mail.sender_domain or sender.rpartition("@")[2],
        subject=mail.subject,
        text=mail.text,
        html=mail.html,
    )


class IngestWorker:
    """The gateway's side: starts the worker process, sends mail, restarts it if it dies."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._writer: asyncio.StreamWriter | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._pending: dict[int, asyncio.Future[list[str] | None]] = {}
        self._next_id = 0
        self._supervisor: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._closing = False
        self.restarts = 0

    async def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise())
        try:
            await asyncio.wait_for(self._ready.wait(), 30)
        except TimeoutError:
            await self.close()
            raise ConfigError("the ingest worker did not start; see the log above") from None

    async def _supervise(self) -> None:
        while not self._closing:
            try:
                await self._run_once()
            except Exception:
                log.exception("the ingest worker failed")
            self._fail_pending()
            if self._closing:
                break
            self.restarts += 1
            log.error("the ingest worker stopped; starting it again")
            await asyncio.sleep(RESTART_DELAY)

    async def _run_once(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "smtp.worker", str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
            )  # fmt: skip
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        writer.write(_frame(self._settings))
        if await _read_frame(reader) != "ready":
            raise WorkerUnavailable("the worker did not start")
        self._writer = writer
        self._ready.set()
        log.info("ingest worker started", extra={"pid": self._proc.pid})
        try:
            while True:
                req_id, outcomes = await _read_frame(reader)
                fut = self._pending.pop(req_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(outcomes)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the worker exited
        finally:
            self._writer = None
            writer.close()
            if self._proc.returncode is None and not self._closing:
                self._proc.kill()
            await self._proc.wait()

    def _fail_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_result(None)

    async def ingest(self, raw: bytes, mail_from: str, routes: Sequence[Route]) -> list[str]:
        """Have the worker parse, extract and commit a mail; its outcome for each route."""
        writer = self._writer
        if writer is None:
            raise WorkerUnavailable("the ingest worker is not running")
        self._next_id += 1
        req_id = self._next_id
        fut: asyncio.Future[list[str] | None] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        writer.write(_frame((req_id, raw, mail_from, list(routes))))
        try:
            # A sender that hangs up does not cancel the commit, only the wait.
            outcomes = await asyncio.wait_for(asyncio.shield(fut), INGEST_TIMEOUT)
        except TimeoutError:
            raise WorkerUnavailable("the ingest worker did not answer in time") from None
        finally:
            self._pending.pop(req_id, None)
        if outcomes is None:
            raise WorkerUnavailable("the ingest worker could not store the mail")
        return outcomes

    async def close(self) -> None:
        """Let the worker finish what it has, then stop it."""
        self._closing = True
        if self._writer is not None:
            self._writer.write_eof()  # the worker drains and exits
        if self._proc is not None:
            try:
                await asyncio.wait_for(self._proc.wait(), 15)
            except TimeoutError:
                self._proc.kill()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor


# -- the worker process ---------------------------------------------------------------


async def _serve(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    settings: Settings = await _read_frame(reader)
    configure(settings.log_format, settings.log_level)
    db = await Database.open(settings.database_url, migrate=False)
    inbound = InboundService(
        db, Vault(KeyRing.load(settings.master_key_file)), Bells(), Metrics(),
        code_ttl=settings.code_ttl,
    )  # fmt: skip
    writer.write(_frame("ready"))
    tasks: set[asyncio.Task[None]] = set()

    async def handle(req_id: int, raw: bytes, mail_from: str, routes: list[Route]) -> None:
        try:
            outcomes: list[str] | None = await inbound.store(
                message_from_mail(raw, mail_from), routes
            )
        except Exception:
            log.exception("could not store a mail")
            outcomes = None
        writer.write(_frame((req_id, outcomes)))

    try:
        while True:
            try:
                request = await _read_frame(reader)
            except asyncio.IncompleteReadError:
                break  # the gateway is shutting down (or gone)
            task = asyncio.create_task(handle(*request))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
        await writer.drain()
    finally:
        await inbound.close()
        await db.close()
        writer.close()


def main() -> None:
    # The gateway handles SIGINT/SIGTERM; the worker stops when its socket closes.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.umask(0o077)
    asyncio.run(_serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
