"""Listening sockets and the HTTP site: binding an address, serving an app on it, its access log.

:func:`bind` takes a listening socket before anything else starts, so a busy
port stops ``otpgate serve`` with one clear line; :func:`start_http` serves
the aiohttp application on a socket already bound (by ``serve`` or a test).

Slow clients are bounded here, at the protocol: aiohttp's ``keepalive_timeout``
starts when a connection opens and again after each answer, and closes the
connection if no whole request head has arrived by then, so it is the time
to send the headers (``OTPGATE_HTTP_HEADER_TIMEOUT``); one client address
may hold ``OTPGATE_HTTP_MAX_CONNECTIONS_PER_CLIENT`` connections, the next is
answered 429 and closed before it is read (a front named in
``OTPGATE_HTTP_TRUSTED_PROXIES`` carries many clients and is not capped).
aiohttp's own answers to what it cannot parse (a request line or header over
8 KiB, bad syntax) are the contract's JSON error, logged in one line.  The body's deadline is the
application's (``gateway.api.limits``).
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import socket
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

from .errors import ConfigError
from .settings import NO_PROXIES, Address, TrustedProxies

log = logging.getLogger("otpgate.http")

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


#: How many connections the kernel holds for the gateway before it accepts them: enough for a
#: fleet of agents reconnecting at once after a restart (Linux caps it at ``net.core.somaxconn``).
#: asyncio listens again on a socket it is given, with its own default of 100, unless told.
LISTEN_BACKLOG = 4096


def bind(address: Address, setting: str) -> socket.socket:
    """Take a listening socket now, so a busy port stops the start before anything else."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    try:
        sock = socket.create_server(
            (address.host, address.port), family=family, backlog=LISTEN_BACKLOG
        )
    except OSError as exc:
        raise ConfigError(f"cannot listen on {address} ({setting}): {_reason(exc)}") from None
    sock.setblocking(False)
    return sock


@dataclass(frozen=True, slots=True)
class HttpLimits:
    header_timeout: float = 10.0
    max_connections_per_client: int = 128
    #: Fronts whose connections carry many clients' requests: never capped.
    trusted_proxies: TrustedProxies = NO_PROXIES


class ClientConnections:
    """Open HTTP connections per client address, with a cap on each.

    A trusted front's connections are not counted: each carries the requests
    of whichever clients reach it (and the front caps its own clients).
    """

    def __init__(self, per_client: int, trusted: TrustedProxies | None = None) -> None:
        self.per_client = per_client
        self.trusted = trusted or NO_PROXIES
        self.refused = 0
        self._open: dict[str, int] = {}

    def enter(self, client: str) -> bool:
        """Count a connection from *client*; False if it is one too many (a front's never is)."""
        if self.trusted.trusts(client):
            return True
        held = self._open.get(client, 0)
        if held >= self.per_client:
            self.refused += 1
            return False
        self._open[client] = held + 1
        return True

    def leave(self, client: str) -> None:
        if client not in self._open:
            return
        held = self._open.pop(client) - 1
        if held > 0:
            self._open[client] = held

    def held_by(self, client: str) -> int:
        return self._open.get(client, 0)


def _raw_error(status: int, reason: str, code: str, message: str, **headers: str) -> bytes:
    body = (json.dumps({"error": {"code": code, "message": message}}) + "\n").encode()
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n{head}Connection: close\r\n\r\n"
    ).encode() + body


_TOO_MANY = _raw_error(
    429,
    "Too Many Requests",
    "too_many_connections",
    "this address holds too many connections; close some and try again",
    **{"Retry-After": "1"},
)


class _Requests(list[Any]):
    """A connection's queue of parsed requests waiting for their turn (pipelining).

    aiohttp keeps it in a ``collections.deque``, which takes 760 bytes even
    empty, on every open connection, and each of 10,000 long polls is one;
    requests on one connection are few and served in order, and a list with
    ``popleft`` takes 56 bytes.
    """

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


class GatewayRequestHandler(web.RequestHandler):
    """aiohttp's connection protocol, capped per client address, with JSON for its own errors."""

    # aiohttp's protocol is slotted: so is this, or each connection carries a dict.
    __slots__ = ("_client", "_clients", "_refused")

    def __init__(self, manager: web.Server, *, clients: ClientConnections, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        # aiohttp appends, pops from the left and takes the length: nothing else.
        self._messages = _Requests()  # type: ignore[assignment]  # a deque's interface, smaller
        self._clients = clients
        self._client: str | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        if not self._clients.enter(client):
            self._refused = True
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(_TOO_MANY)
            transport.close()
            return
        self._client = client
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused:
            return
        try:
            super().connection_lost(exc)
        finally:
            if self._client is not None:
                self._clients.leave(self._client)
                self._client = None

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's own answer to a request it could not parse (or that broke outside
        the application): the contract's JSON error, one log line, no traceback."""
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was already under way")
        if status >= 500:
            log.error("a request failed outside the application", exc_info=exc)
            code, text = "internal_error", "the gateway failed to answer; see its log"
        else:
            # One line, never the request's bytes (a header's value may be a secret).
            log.warning(
                "malformed HTTP request from %s (%s), answered %s",
                request.remote,
                type(exc).__name__ if exc is not None else "unknown",
                status,
            )
            code = "bad_input"
            text = "the request could not be read (a line or header too long, or bad syntax)"
        response = web.json_response(
            {"error": {"code": code, "message": text}},
            status=status,
            dumps=lambda data: json.dumps(data) + "\n",  # as every JSON reply ends
        )
        response.force_close()
        return response


class _Site(web.BaseSite):
    """A listening socket served by :class:`GatewayRequestHandler` connections."""

    def __init__(
        self,
        runner: web.AppRunner,
        sock: socket.socket,
        options: dict[str, Any],
        limits: HttpLimits,
    ) -> None:
        super().__init__(runner, backlog=LISTEN_BACKLOG)
        self._sock = sock
        self._options = options
        self.clients = ClientConnections(limits.max_connections_per_client, limits.trusted_proxies)

    @property
    def name(self) -> str:
        return str(self._sock.getsockname())

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        manager = self._runner.server
        assert manager is not None

        def connection() -> GatewayRequestHandler:
            return GatewayRequestHandler(manager, loop=loop, clients=self.clients, **self._options)

        self._server = await loop.create_server(connection, sock=self._sock, backlog=LISTEN_BACKLOG)


async def start_http(
    app: web.Application, sock: socket.socket, limits: HttpLimits | None = None
) -> web.AppRunner:
    """Serve *app* on an already bound socket; ``runner.cleanup()`` stops it gracefully."""
    limits = limits or HttpLimits()
    options: dict[str, Any] = {
        "access_log_class": AccessLogger,
        "access_log": logging.getLogger("otpgate.access"),
        "keepalive_timeout": limits.header_timeout,
        "max_line_size": MAX_REQUEST_LINE,
    }
    runner = web.AppRunner(
        app, handler_cancellation=True, shutdown_timeout=SHUTDOWN_GRACE, **options
    )
    await runner.setup()
    try:
        await _Site(runner, sock, options, limits).start()
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
