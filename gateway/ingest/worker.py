"""The ingest worker, the gateway's side: parsing, extraction, sealing and the commit elsewhere.

The SMTP listener and the SMS webhooks run in the gateway's own process and
event loop, but the CPU-heavy part of taking a message (MIME parsing, code
extraction, encryption, the group commit) runs here, on another core: the
gateway stays free to serve sessions and HTTP, and a hostile mail that takes
long to parse never stalls the API.  The gateway hands each message over a
private socket pair and answers (SMTP ``250``, the webhook's ``200``) only
when the worker reports it committed.  If the worker fails or dies, a mail is
answered ``451`` (the sender retries), a text is stored in the gateway's own
process (Twilio does not retry), and the worker is started again.

This module starts the worker process (:mod:`gateway.ingest.process`), hands
it messages and restarts it when it dies.  Frames on the socket are a 4-byte
big-endian length and a pickle.  Pickle is safe here: both ends are this
program, over a socket pair nobody else holds.

    gateway -> worker   first frame: the Settings; then
                        (id, "mail", raw, mail_from, routes) for a mail to parse, or
                        (id, "message", message, routes, seen) for a parsed text
    worker  -> gateway  (id, outcomes); (id, None) when it could not be stored;
                        (id, "duplicate") when *seen* was stored before
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import socket
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ConfigError
from ..services.inbound import AlreadyStored, Message, OffloadUnavailable, Route
from ..settings import Settings

log = logging.getLogger("otpgate.smtp")

_HEADER = struct.Struct(">I")
#: Seconds a mail may take in the worker before the sender is told to retry.
INGEST_TIMEOUT = 30.0
#: Seconds to wait before starting a worker that died.
RESTART_DELAY = 1.0


#: The worker's answer for a message id stored before.
DUPLICATE = "duplicate"
#: What a request not answered within INGEST_TIMEOUT is resolved with.
_LATE = "late"

_Answer = list[str] | str | None


class WorkerUnavailable(OffloadUnavailable):
    """The worker is not running or failed to store a message."""


async def read_frame(reader: asyncio.StreamReader) -> Any:
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    return pickle.loads(await reader.readexactly(size))  # noqa: S301 - our own process


def frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


#: Frames written at once as soon as this many are queued.
_FLUSH_AT = 8


class Frames:
    """Frames written together rather than with a system call each.

    Under load dozens of messages (or their answers) are handed over in one
    turn of the event loop.  They go out in writes of :data:`_FLUSH_AT`
    frames, the rest at the end of the turn: waiting for the end of a long
    turn would hold the first messages back while the gateway reads the
    others, and the two processes would take turns instead of working at once.
    """

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._queued: list[bytes] = []

    def send(self, obj: Any) -> None:
        if not self._queued:
            asyncio.get_running_loop().call_soon(self.flush)
        self._queued.append(frame(obj))
        if len(self._queued) >= _FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        queued, self._queued = self._queued, []
        if queued and not self._writer.is_closing():
            self._writer.write(b"".join(queued))


class IngestWorker:
    """The gateway's side: starts the worker process, sends mail, restarts it if it dies."""

    def __init__(self, settings: Settings, *, restarted: Callable[[], None] = lambda: None) -> None:
        self._settings = settings
        self._restarted = restarted
        self._writer: asyncio.StreamWriter | None = None
        self._frames: Frames | None = None
        self._proc: asyncio.subprocess.Process | None = None
        #: Requests sent and not answered yet, oldest first: (deadline, answer).
        self._pending: dict[int, tuple[float, asyncio.Future[_Answer]]] = {}
        self._expiry: asyncio.Task[None] | None = None
        self._next_id = 0
        self._supervisor: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._closing = False
        self.restarts = 0

    @property
    def running(self) -> bool:
        """True from :meth:`start` until :meth:`close`: messages are sent to the worker."""
        return self._ready.is_set() and not self._closing

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
            self._restarted()
            log.error("the ingest worker stopped; starting it again")
            await asyncio.sleep(RESTART_DELAY)

    async def _run_once(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.ingest.process", str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
            )  # fmt: skip
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        writer.write(frame(self._settings))
        if await read_frame(reader) != "ready":
            raise WorkerUnavailable("the worker did not start")
        self._writer = writer
        self._frames = Frames(writer)
        self._ready.set()
        log.info("ingest worker started", extra={"pid": self._proc.pid})
        try:
            while True:
                req_id, outcomes = await read_frame(reader)
                entry = self._pending.pop(req_id, None)
                if entry is not None and not entry[1].done():
                    entry[1].set_result(outcomes)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the worker exited
        finally:
            self._writer = self._frames = None
            writer.close()
            if self._proc.returncode is None and not self._closing:
                self._proc.kill()
            await self._proc.wait()

    def _fail_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for _, fut in pending.values():
            if not fut.done():
                fut.set_result(None)

    async def ingest(self, raw: bytes, mail_from: str, routes: Sequence[Route]) -> list[str]:
        """Have the worker parse, extract and commit a mail; its outcome for each route."""
        outcomes = await self._call(("mail", raw, mail_from, list(routes)))
        if not isinstance(outcomes, list):
            raise WorkerUnavailable("the ingest worker could not store the mail")
        return outcomes

    async def store(
        self, message: Message, routes: Sequence[Route], seen: tuple[str, str] | None
    ) -> list[str]:
        """:meth:`InboundService.store`, run by the worker (an :class:`Offload`)."""
        outcomes = await self._call(("message", message, list(routes), seen))
        if outcomes == DUPLICATE:
            raise AlreadyStored("message already stored")
        if not isinstance(outcomes, list):
            raise WorkerUnavailable("the ingest worker could not store the message")
        return outcomes

    async def _call(self, request: tuple[Any, ...]) -> _Answer:
        frames = self._frames
        if frames is None:
            raise WorkerUnavailable("the ingest worker is not running")
        self._next_id += 1
        req_id = self._next_id
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[_Answer] = loop.create_future()
        self._pending[req_id] = (loop.time() + INGEST_TIMEOUT, fut)
        frames.send((req_id, *request))
        if self._expiry is None or self._expiry.done():
            self._expiry = asyncio.create_task(self._expire())
        try:
            # The answer is only a result: a sender that hangs up cancels the
            # wait, never the commit, which goes on in the worker.
            answer = await fut
        finally:
            self._pending.pop(req_id, None)
        if answer == _LATE:
            raise WorkerUnavailable("the ingest worker did not answer in time")
        return answer

    async def _expire(self) -> None:
        """Resolve requests left unanswered for INGEST_TIMEOUT, oldest first.

        One task for all requests rather than a timer each: under load the
        gateway hands over thousands of messages a second.
        """
        loop = asyncio.get_running_loop()
        while self._pending:
            deadline, _ = next(iter(self._pending.values()))
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            now = loop.time()
            for req_id, (deadline, fut) in list(self._pending.items()):
                if deadline > now:
                    break
                del self._pending[req_id]
                if not fut.done():
                    fut.set_result(_LATE)

    async def close(self) -> None:
        """Let the worker finish what it has, then stop it."""
        self._closing = True
        writer, frames = self._writer, self._frames
        self._writer = self._frames = None  # new messages are not sent any more
        if writer is not None and frames is not None:
            frames.flush()
            writer.write_eof()  # the worker drains and exits
        if self._proc is not None:
            try:
                await asyncio.wait_for(self._proc.wait(), 15)
            except TimeoutError:
                self._proc.kill()
        if self._expiry is not None:
            self._expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
