"""Listening sockets and the HTTP site: binding an address, serving an app on it, its access log.

:func:`bind` takes a listening socket before anything else starts, so a busy
port stops ``otpgate serve`` with one clear line; :func:`start_http` serves
the aiohttp application on a socket already bound (by ``serve`` or a test).
"""

from __future__ import annotations

import errno
import logging
import socket

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

from .errors import ConfigError
from .settings import Address

#: Seconds in-flight requests get to finish on shutdown.
SHUTDOWN_GRACE = 10.0
#: The longest request line read (aiohttp's default is 8,190 bytes): a Twilio
#: webhook configured as GET carries the whole text in its URL, and 1,600
#: characters of Japanese are 14 KB percent-encoded.
MAX_REQUEST_LINE = 32 * 1024


class AccessLogger(AbstractAccessLogger):
    """One line per request: method, route pattern (never the raw path), status, time.

    Logging the route pattern rather than the path keeps tokens and ids that
    appear in paths out of the log.
    """

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        route = "<unmatched>"
        try:
            info = request.match_info  # type: ignore[attr-defined]
        except (AttributeError, AssertionError):
            # A request aiohttp could not parse (answered 400) was never routed,
            # and aiohttp asserts on its match_info.
            info = None
        if info is not None and info.route is not None and info.route.resource is not None:
            route = info.route.resource.canonical
        self.logger.info(
            "%s %s %s %.1fms",
            request.method,
            route,
            response.status,
            time * 1000,
        )


def bind(address: Address, setting: str) -> socket.socket:
    """Take a listening socket now, so a busy port stops the start before anything else."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    try:
        sock = socket.create_server((address.host, address.port), family=family, backlog=512)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {address} ({setting}): {_reason(exc)}") from None
    sock.setblocking(False)
    return sock


async def start_http(app: web.Application, sock: socket.socket) -> web.AppRunner:
    """Serve *app* on an already bound socket; ``runner.cleanup()`` stops it gracefully."""
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        access_log_class=AccessLogger,
        access_log=logging.getLogger("otpgate.access"),
        shutdown_timeout=SHUTDOWN_GRACE,
        max_line_size=MAX_REQUEST_LINE,
    )
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def bound(address: Address, sock: socket.socket) -> Address:
    return Address(address.host, int(sock.getsockname()[1]))


def _reason(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "the address is already in use"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "no interface has this address"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges)"
    return exc.strerror or str(exc)
