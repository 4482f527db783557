"""The SMTP listener: aiosmtpd on the gateway's own event loop.

Only mail for an existing credential's inbox is accepted (``local@domain``
and ``local+tag@domain``); any other local part is refused at RCPT with
``550 5.1.1``, any other domain with ``550 5.7.1`` (this is never a relay).
``250`` after DATA is sent only once the message's code is committed to disk;
a failure answers ``451`` so the sender retries.  Sessions are limited in
number, size, recipients and idle time.

Lines may be longer than RFC 5321's 1,000 octets: senders' long headers and
one-line HTML bodies exceed it, and with no MTA in front to fold them a
``500`` would lose the code.  Up to :data:`MAX_LINE` octets a line is taken
(the mail is counted in ``otpgate_mail_long_lines_total``); a longer one is
still answered ``500``.

A client cannot hold the listener: it gets at most
``max_sessions_per_client`` sessions at once, the last ``new_client_share``
percent of the sessions are kept for addresses that hold none, each session
ends after ``session_lifetime`` seconds (a mail being stored gets its reply
first), and a session that sends ``max_idle_commands`` NOOP, RSET, HELP, VRFY
or EXPN commands without a mail being accepted in between is closed with
``421``.

Behind an SMTP front (HAProxy in TCP mode), every session comes from the
front's address.  A front named in ``OTPGATE_SMTP_PROXY_PROTOCOL`` opens
each session with a PROXY protocol header (v1 or v2, HAProxy's
``send-proxy``); the header's source address is then the session's client,
for the per-client limits and the log, and the front's own address is never
capped.  A connection from such a front without a valid header is closed
before the greeting.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aiosmtpd.proxy_protocol import ProxyData
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.errors import StoreUnavailable
from gateway.services.inbound import (
    CODE,
    LINK,
    NO_CODE,
    REJECTED,
    InboundService,
    OffloadUnavailable,
    Route,
)
from gateway.settings import NO_PROXIES, TrustedProxies

log = logging.getLogger("otpgate.smtp")

#: The longest line read (a command or a line of DATA), in octets, line ending included.
MAX_LINE = 64 * 1024


@dataclass(frozen=True, slots=True)
class SmtpLimits:
    hostname: str
    domain: str
    max_size: int = 1024 * 1024
    max_recipients: int = 10
    max_sessions: int = 200
    idle_timeout: float = 30.0
    max_sessions_per_client: int = 20
    #: Percent of ``max_sessions`` kept for client addresses that hold no session.
    new_client_share: int = 20
    session_lifetime: float = 300.0
    max_idle_commands: int = 20
    #: Fronts that open each session with a PROXY protocol header.
    proxy_protocol: TrustedProxies = NO_PROXIES


def _client_of(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"


class SessionGate:
    """Counts open sessions, refuses new ones over the limits, and drains them on shutdown.

    Three limits: *limit* sessions in all, *per_client* from one address,
    and the last *reserved* of the *limit* only for an address holding none,
    so clients that already hold sessions cannot take every one of them.
    """

    def __init__(self, limit: int, *, per_client: int | None = None, reserved: int = 0) -> None:
        self.limit = limit
        self.per_client = limit if per_client is None else per_client
        self.reserved = min(reserved, limit - 1)
        self.active = 0
        self.refused = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.draining = False
        self._sessions: set[InboxSMTP] = set()
        self._by_client: dict[str, int] = {}

    def enter(self, session: InboxSMTP, client: str | None = "unknown") -> bool:
        """Count a new session from *client*; None: a front's, whose client is not known yet."""
        held = self._by_client.get(client, 0) if client is not None else 0
        if self.draining or self.active >= self.limit or self._over(held, self.active):
            self.refused += 1
            return False
        self.active += 1
        if client is not None:
            self._by_client[client] = held + 1
        self._sessions.add(session)
        self.idle.clear()
        return True

    def name(self, client: str) -> bool:
        """A front's session (entered with no client) turns out to be *client*'s:
        count it as theirs, or False if that is one too many for them."""
        held = self._by_client.get(client, 0)
        if self._over(held, self.active - 1):  # this session is already among the active ones
            self.refused += 1
            return False
        self._by_client[client] = held + 1
        return True

    def _over(self, held: int, others: int) -> bool:
        """Whether a client holding *held* sessions may not have one more, *others* open."""
        return held >= self.per_client or (held > 0 and others >= self.limit - self.reserved)

    def leave(self, session: InboxSMTP, client: str | None = "unknown") -> None:
        self.active -= 1
        if client is not None:
            held = self._by_client.pop(client, 1) - 1
            if held > 0:
                self._by_client[client] = held
        self._sessions.discard(session)
        if not self.active:
            self.idle.set()

    def held_by(self, client: str) -> int:
        """Sessions *client* holds now."""
        return self._by_client.get(client, 0)

    def drain(self) -> None:
        """Shutting down: refuse new sessions; close idle ones with ``421``.

        A session whose mail is being stored keeps going: it gets its ``250``
        (or ``451``) and is closed right after that reply.
        """
        self.draining = True
        for session in list(self._sessions):
            if session.storing:
                session.close_after_reply = True
            else:
                session.refuse(b"421 4.3.2 Service shutting down; try again later")


class InboxHandler:
    """aiosmtpd handler: RCPT checks the inbox, DATA stores the code durably.

    DATA hands the raw mail to the inbound service, which parses and stores
    it in the ingest worker process (or in this one without a worker), and
    answers once it is committed.
    """

    def __init__(self, inbound: InboundService, limits: SmtpLimits) -> None:
        self._inbound = inbound
        self._limits = limits

    def __dir__(self) -> list[str]:
        # What aiosmtpd looks for on a handler (see InboxSMTP.__dir__).
        return list(_HANDLER_HOOKS)

    async def handle_PROXY(
        self, server: InboxSMTP, session: Session, envelope: Envelope, proxy: ProxyData
    ) -> bool:
        """A front's PROXY header: the session is its source's, within that client's limits."""
        source = proxy.src_addr
        if not isinstance(source, ipaddress.IPv4Address | ipaddress.IPv6Address):
            # LOCAL (v2) or no address: the front speaking for itself (a health check).
            return server.name_client(_client(session))
        if not server.name_client(str(source)):
            return False
        # aiosmtpd keeps the transport's peername (a tuple) here, typed as a str.
        session.peer = (str(source), proxy.src_port)  # type: ignore[assignment]
        return True

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        local, at, domain = address.rpartition("@")
        if not at or not local or domain.lower().rstrip(".") != self._limits.domain:
            return _refused(
                session,
                "550 5.7.1 Relaying denied: this server only accepts mail for its inboxes",
                f"the recipient's domain is not OTPGATE_INBOX_DOMAIN ({self._limits.domain})",
            )
        if len(envelope.rcpt_tos) >= self._limits.max_recipients:
            return _refused(
                session, "452 4.5.3 Too many recipients", "over OTPGATE_SMTP_MAX_RECIPIENTS"
            )
        inbox = local.split("+", 1)[0]
        try:
            route = await self._inbound.route_for_inbox(inbox) if inbox else None
        except StoreUnavailable:
            return _refused(session, _RETRY, "the database is unavailable")
        if route is None:
            return _refused(
                session, "550 5.1.1 No such inbox here", "no credential has this inbox address"
            )
        routes: list[Route] = _routes(envelope)
        if all(r.credential_id != route.credential_id for r in routes):
            routes.append(route)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        routes = _routes(envelope)
        if not routes:
            return _refused(session, "554 5.5.1 No valid recipients", "every recipient was refused")
        raw = envelope.original_content or b""
        mail_from = envelope.mail_from or ""
        if not isinstance(server, InboxSMTP):  # always one here; narrows the type
            return await self._store(session, raw, mail_from, routes)
        server.storing = True
        try:
            reply = await self._store(session, raw, mail_from, routes)
        finally:
            server.storing = False
        if reply.startswith("250"):
            server.idle_commands = 0
        return reply

    async def _store(
        self, session: Session, raw: bytes, mail_from: str, routes: list[Route]
    ) -> str:
        try:
            outcomes = await self._inbound.accept_mail(raw, mail_from, routes)
        except OffloadUnavailable as exc:
            log.error("could not store a mail; asked the sender to retry: %s", exc)
            return _refused(session, _RETRY, "the ingest worker could not store it")
        except StoreUnavailable:
            return _refused(session, _RETRY, "the database is unavailable")
        except Exception:
            log.exception("could not store a mail; asked the sender to retry")
            return _refused(session, _RETRY, "storing it failed")
        log.info(
            "accepted a mail",
            extra={
                "client": _client(session),
                "sender_domain": mail_from.rpartition("@")[2][:253] or "-",
                "outcome": "; ".join(
                    f"{r.credential_id}: {_OUTCOMES.get(o, o)}"
                    for r, o in zip(routes, outcomes, strict=False)
                ),
            },
        )
        return "250 2.0.0 Message accepted"

    async def handle_exception(self, error: Exception) -> str:
        """Any other failure at any stage is temporary for the sender: ``451``, never ``500``."""
        if not isinstance(error, StoreUnavailable):
            log.error(
                "an SMTP command failed (%s); asked the sender to retry", type(error).__name__
            )
        return _RETRY


#: What each credential got from a mail, in the words of the log.
_OUTCOMES = {
    CODE: "code stored",
    LINK: "link stored",
    NO_CODE: "no code or link found in it",
    REJECTED: "not kept: the sender is not in the credential's allowed senders",
}

#: The reply that keeps the mail at the sender, to be tried again later.
_RETRY = "451 4.3.0 Temporary failure; please try again later"


def _refused(session: Session, reply: str, reason: str) -> str:
    """Log a refusal at info (the reply and why; never an address's local part) and return it."""
    log.info(
        "refused a mail", extra={"client": _client(session), "reply": reply[:9], "reason": reason}
    )
    return reply


def _client(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)


def _routes(envelope: Envelope) -> list[Route]:
    routes: list[Route] | None = getattr(envelope, "otpgate_routes", None)
    if routes is None:
        routes = []
        # aiosmtpd makes a new Envelope per mail transaction, so the routes
        # found at RCPT travel with it to DATA and are reset by RSET.
        envelope.otpgate_routes = routes  # type: ignore[attr-defined]
    return routes


def _counted_idle(name: str) -> Callable[[InboxSMTP, str], Coroutine[Any, Any, Any]]:
    """aiosmtpd's ``smtp_<name>``, counted as a command that moves no mail along."""
    stock = getattr(SMTP, name)

    @functools.wraps(stock)  # keeps aiosmtpd's syntax line for HELP
    async def counted(self: InboxSMTP, arg: str) -> None:
        self.idle_commands += 1
        if self.idle_commands > self._limits.max_idle_commands:
            self.refuse(b"421 4.7.0 Too many commands without a mail; closing")
            return
        await stock(self, arg)

    return counted


class InboxSMTP(SMTP):
    """aiosmtpd's protocol with caps on sessions, their lifetime and their idle commands.

    aiosmtpd finds its ``smtp_*`` and ``auth_*`` methods (and the handler's
    ``handle_*`` hooks) with ``dir()`` and ``inspect.getmembers()`` on every
    new connection, which costs about 90 µs a session; ``__dir__`` here (and
    on the handler) answers with just those names, computed once per class.
    """

    #: aiosmtpd's limit is RFC 5321's 1,000 octets (plus one); see the module's docstring.
    line_length_limit = MAX_LINE

    def __dir__(self) -> list[str]:
        return list(_SMTP_HOOKS)

    def __init__(
        self,
        handler: InboxHandler,
        gate: SessionGate,
        limits: SmtpLimits | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._gate = gate
        self._limits = limits or SmtpLimits(hostname="", domain="")
        self._counted = False
        self._refused = False
        #: The client the session is counted for; None while a front's PROXY header is awaited.
        self._client: str | None = "unknown"
        self._lifetime: asyncio.TimerHandle | None = None
        #: True while DATA waits for the mail to be stored.
        self.storing = False
        self.close_after_reply = False
        #: NOOP, RSET, HELP, VRFY and EXPN since the session began or last stored a mail.
        self.idle_commands = 0

    smtp_NOOP = _counted_idle("smtp_NOOP")
    smtp_RSET = _counted_idle("smtp_RSET")
    smtp_HELP = _counted_idle("smtp_HELP")
    smtp_VRFY = _counted_idle("smtp_VRFY")
    # aiosmtpd types smtp_EXPN as a method; this wrapper is one, bound like any function.
    smtp_EXPN = _counted_idle("smtp_EXPN")  # type: ignore[assignment]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._counted and not self._refused:
            peer = _client_of(transport)
            fronted = self._limits.proxy_protocol.trusts(peer)
            self._client = None if fronted else peer
            if fronted:
                # aiosmtpd reads a PROXY header before its greeting when this is
                # set; set per session, so only the fronts must send one.
                self._proxy_timeout = self._limits.idle_timeout
            if not self._gate.enter(self, self._client):
                self._refused = True
                assert isinstance(transport, asyncio.WriteTransport)
                reason = (
                    b"Service shutting down" if self._gate.draining else b"Too many connections"
                )
                transport.write(b"421 4.3.2 " + reason + b"; try again later\r\n")
                transport.close()
                return
            self._counted = True
            self._lifetime = self.loop.call_later(self._limits.session_lifetime, self._expire)
        super().connection_made(transport)

    def name_client(self, client: str) -> bool:
        """The front's PROXY header named *client*: count the session as theirs, or refuse it."""
        if self._client is not None:
            return self._client == client
        if not self._gate.name(client):
            log.info("refused a session", extra={"client": client, "reason": "too many sessions"})
            self.refuse(b"421 4.3.2 Too many connections; try again later")
            return False
        self._client = client
        return True

    def _expire(self) -> None:
        """The session has lasted long enough: close it now, or after the mail being stored."""
        if self.storing:
            self.close_after_reply = True
        else:
            self.refuse(b"421 4.4.2 Session lasted too long; closing")

    def refuse(self, reply: bytes) -> None:
        """Send *reply* and hang up (the sender keeps its mail and retries)."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(reply + b"\r\n")
            transport.close()

    async def push(self, status: Any) -> None:
        await super().push(status)
        if self.close_after_reply and not self.storing:
            self.refuse(
                b"421 4.3.2 Service shutting down"
                if self._gate.draining
                else b"421 4.4.2 Session lasted too long; closing"
            )

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        if self._lifetime is not None:
            self._lifetime.cancel()
        try:
            super().connection_lost(error)
        finally:
            if self._counted:
                self._counted = False
                self._gate.leave(self, self._client)


_SMTP_HOOKS = tuple(n for n in dir(InboxSMTP) if n.startswith(("smtp_", "auth_")))
_HANDLER_HOOKS = tuple(n for n in dir(InboxHandler) if n.startswith(("handle_", "auth_")))


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def start_smtp(
    sock: socket.socket,
    inbound: InboundService,
    limits: SmtpLimits,
    *,
    tls: ssl.SSLContext | None = None,
    backlog: int,
) -> tuple[asyncio.Server, SessionGate]:
    """Serve SMTP on an already bound socket, on the running loop, holding up to *backlog*
    connections not yet accepted (asyncio listens on the socket again)."""
    loop = asyncio.get_running_loop()
    handler = InboxHandler(inbound, limits)
    gate = SessionGate(
        limits.max_sessions,
        per_client=limits.max_sessions_per_client,
        reserved=limits.max_sessions * limits.new_client_share // 100,
    )

    def factory() -> InboxSMTP:
        return InboxSMTP(
            handler,
            gate,
            limits,
            hostname=limits.hostname,
            ident="otpgate",
            data_size_limit=limits.max_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            tls_context=tls,
            require_starttls=False,
            timeout=limits.idle_timeout,
            loop=loop,
        )

    server = await loop.create_server(factory, sock=sock, backlog=backlog)
    return server, gate
