"""The ingest worker process: stores what the gateway hands it, through its own services.

Started by :class:`gateway.ingest.worker.IngestWorker` as ``python -m
gateway.ingest.process FD``.  The first frame on the socket is the gateway's
:class:`~gateway.settings.Settings`; the worker builds its store and
:class:`~gateway.services.inbound.InboundService` with
:func:`gateway.app.build_ingest`, the same composition root as the gateway's,
answers ``ready``, then serves requests until the gateway closes its end:

    (id, "mail", raw, mail_from, routes)      parse, extract and commit a mail
    (id, "message", message, routes, seen)    extract and commit a decoded text
    -> (id, outcomes) | (id, None) when it could not be stored
       | (id, "duplicate") when *seen* was stored before
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from typing import Any

from ..app import build_ingest
from ..services.inbound import AlreadyStored, InboundService, message_from_mail
from ..settings import Settings
from .worker import DUPLICATE, Frames, frame, read_frame

log = logging.getLogger("otpgate.smtp")


async def _serve(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    try:
        settings: Settings = await read_frame(reader)
        async with build_ingest(settings) as inbound:
            writer.write(frame("ready"))
            await _handle(inbound, reader, writer)
    finally:
        writer.close()


async def _handle(
    inbound: InboundService, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Store each request as it comes, answer when it is committed, until the gateway hangs up."""
    frames = Frames(writer)
    tasks: set[asyncio.Task[None]] = set()

    async def handle(req_id: int, kind: str, *args: Any) -> None:
        outcomes: list[str] | str | None
        try:
            if kind == "mail":
                raw, mail_from, routes = args
                outcomes = await inbound.store(message_from_mail(raw, mail_from), routes)
            else:
                message, routes, seen = args
                outcomes = await inbound.store(message, routes, seen=seen)
        except AlreadyStored:
            outcomes = DUPLICATE
        except Exception:
            log.exception("could not store a %s", "mail" if kind == "mail" else "message")
            outcomes = None
        frames.send((req_id, outcomes))

    while True:
        try:
            request = await read_frame(reader)
        except asyncio.IncompleteReadError:
            break  # the gateway is shutting down (or gone)
        task = asyncio.create_task(handle(*request))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    frames.flush()
    await writer.drain()


def main() -> None:
    # The gateway handles SIGINT/SIGTERM; the worker stops when its socket closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.umask(0o077)
    asyncio.run(_serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
