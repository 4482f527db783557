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

The connection protocol also keeps a connection small, for the thousands that
agents hold open in long polls: one coroutine per connection, no parser while
it is idle, nothing of a request once answered (:class:`GatewayRequestHandler`).
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import socket
from dataclasses import dataclass
from typing import Any

from aiohttp import web, web_protocol
from aiohttp.abc import AbstractAccessLogger
from aiohttp.helpers import ceil_timeout
from aiohttp.http_parser import HttpRequestParser
from aiohttp.http_writer import StreamWriter
from aiohttp.streams import EMPTY_PAYLOAD
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
    """aiohttp's connection protocol, capped per client address, with JSON for its own errors.

    It also holds less per connection, which matters when 10,000 agents each hold
    one open in a long poll (``benchmarks/waiters.py``):

    - a request runs in the connection's own task (:meth:`start`), not in a
      second task per request as aiohttp does so that each request gets a copy
      of the context variables; the gateway sets none;
    - the parser goes once the request it parsed is handed over with nothing
      behind it, and a new one comes with the next bytes (:meth:`data_received`):
      aiohttp's keeps the last request's raw headers, the API key among them,
      for as long as the connection stays open;
    - the request keeps no second, raw copy of its headers (``raw_headers``,
      which nothing here reads).
    """

    # aiohttp's protocol is slotted: so is this, or each connection carries a dict.
    __slots__ = ("_client", "_clients", "_idle", "_refused")

    def __init__(self, manager: web.Server, *, clients: ClientConnections, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        # aiohttp appends, pops from the left and takes the length: nothing else.
        self._messages = _Requests()  # type: ignore[assignment]  # a deque's interface, smaller
        self._clients = clients
        self._client: str | None = None
        self._refused = False
        #: The parser stopped at the end of a request without a body, with nothing after it.
        self._idle = False

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
        if self._refused:
            return
        if self._parser is None:
            if not data or self._force_close or self._close:
                return
            self._parser = self._new_parser()
        queued = len(self._messages)
        super().data_received(data)
        # Only a whole head without a body ends exactly at its blank line: a body's first bytes,
        # or part of a next request, would follow it.
        self._idle = (
            len(self._messages) > queued
            and data.endswith(b"\r\n\r\n")
            and self._messages[-1][1] is EMPTY_PAYLOAD
        )

    def _new_parser(self) -> HttpRequestParser:
        """A parser as aiohttp's ``RequestHandler.__init__`` makes one."""
        return HttpRequestParser(
            self,
            self._loop,
            self._read_bufsize,
            max_line_size=self.max_line_size,
            max_field_size=self.max_field_size,
            max_headers=self.max_headers,
            payload_exception=web_protocol.RequestPayloadError,
            max_msg_queue_size=web_protocol.MAX_MSG_QUEUE_SIZE,
        )

    def _drop_idle_parser(self) -> None:
        """Let the parser go if it holds nothing but what it kept of the request just taken."""
        if (
            self._idle
            and not self._messages
            and not self._upgraded
            and not self._buffer_paused
            and not self._reading_paused
        ):
            self._parser = None
        self._idle = False

    async def start(self) -> None:
        """aiohttp's ``RequestHandler.start`` (3.14), with the request handled in this task.

        Changed from aiohttp's:

        - the request handled in this coroutine (aiohttp awaits a task running
          ``_handle_request`` for it, whose lines are copied here);
        - the request's message without ``raw_headers``;
        - the parser dropped when idle (:meth:`_drop_idle_parser`);
        - nothing of a request kept once it is answered (aiohttp's loop holds the
          last request, its body and its answer until the next request);
        - no debug logging, and no warning for a handler that returns an
          ``HTTPException`` rather than raising it (none here does).

        ``tests/test_waiters.py`` pins the source of both aiohttp methods: a new
        aiohttp that changes either makes it fail, to have this copy reviewed.
        """
        loop = self._loop
        manager = self._manager
        assert manager is not None
        keepalive_timeout = self._keepalive_timeout
        resp = None
        assert self._request_factory is not None
        assert self._request_handler is not None

        while not self._force_close:
            if not self._messages:
                try:
                    self._waiter = loop.create_future()
                    await self._waiter
                finally:
                    self._waiter = None

            message, payload = self._messages.popleft()
            if self._parser is not None:
                self._parser.message_consumed()
            if self._buffer_paused and len(self._messages) <= self._msg_queue_resume_size:
                self._resume_reading_if_drained()
            self._drop_idle_parser()

            start = loop.time() if self._logging_enabled else None
            manager.requests_count += 1
            writer = StreamWriter(self, loop)
            if isinstance(message, web_protocol._ErrInfo):
                request_handler = self._make_error_handler(message)
                message = web_protocol.ERROR
            else:
                request_handler = self._request_handler
                message = message._replace(raw_headers=())
            request = self._request_factory(
                message,
                payload,
                self,
                writer,
                self._task_handler or asyncio.current_task(loop),  # type: ignore[arg-type]
            )
            # The request holds its message: this frame, parked for as long as a long
            # poll waits, does not.
            del message
            try:
                # aiohttp's _handle_request, here rather than in a coroutine of its own: the
                # handler's answer, or the error page for what it raised, written out.
                self._request_in_progress = True
                try:
                    try:
                        self._current_request = request
                        try:
                            resp = await request_handler(request)
                        finally:
                            self._current_request = None
                    except web.HTTPException as exc:
                        resp = exc
                    except TimeoutError:
                        resp = self.handle_error(request, 504)
                    except Exception as exc:
                        resp = self.handle_error(request, 500, exc)
                    resp, reset = await self.finish_response(request, resp, start)
                except ConnectionError:
                    break
                finally:
                    self._request_in_progress = False
                    if self._handler_waiter is not None:
                        self._handler_waiter.set_result(None)
                if reset:
                    break
                self._keepalive = bool(resp.keep_alive)
                # Read and ignore what is left of an unread body, for a while.
                if not payload.is_eof():
                    lingering_time = self._lingering_time
                    if not self._force_close and lingering_time:
                        now = loop.time()
                        end_t = now + lingering_time
                        try:
                            while not payload.is_eof() and now < end_t:
                                async with ceil_timeout(end_t - now):
                                    await payload.readany()
                                now = loop.time()
                        except (TimeoutError, asyncio.CancelledError):
                            if (task := asyncio.current_task()) and task.cancelling():
                                raise
                    if not payload.is_eof() and not self._force_close:
                        self.close()
                payload.set_exception(web_protocol._PAYLOAD_ACCESS_ERROR)
            except asyncio.CancelledError:
                self.force_close()
                raise
            except Exception as exc:
                self.log_exception("Unhandled exception", exc_info=exc)
                self.force_close()
            except BaseException:
                self.force_close()
                raise
            finally:
                request._task = None  # type: ignore[assignment]  # as aiohttp: no cycle
                # Nor does it keep the request, its body or its answer until the next comes.
                del request, payload, writer
                resp = None

            if self._keepalive and not self._close and not self._force_close:
                close_time = loop.time() + keepalive_timeout
                self._next_keepalive_close_time = close_time
                if self._keepalive_handle is None:
                    self._keepalive_handle = loop.call_at(close_time, self._process_keepalive)
            else:
                break

        if not self._force_close:
            self._task_handler = None
            if self.transport is not None:
                self.transport.close()

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
