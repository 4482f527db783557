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
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from dataclasses import dataclass
from typing import Any

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


class SessionGate:
    """Counts open sessions, refuses new ones over the limit, and drains them on shutdown."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.refused = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.draining = False
        self._sessions: set[InboxSMTP] = set()

    def enter(self, session: InboxSMTP) -> bool:
        if self.active >= self.limit or self.draining:
            self.refused += 1
            return False
        self.active += 1
        self._sessions.add(session)
        self.idle.clear()
        return True

    def leave(self, session: InboxSMTP) -> None:
        self.active -= 1
        self._sessions.discard(session)
        if not self.active:
            self.idle.set()

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
            return await self._store(session, raw, mail_from, routes)
        finally:
            server.storing = False

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


class InboxSMTP(SMTP):
    """aiosmtpd's protocol with a cap on concurrent sessions.

    aiosmtpd finds its ``smtp_*`` and ``auth_*`` methods (and the handler's
    ``handle_*`` hooks) with ``dir()`` and ``inspect.getmembers()`` on every
    new connection, which costs about 90 µs a session; ``__dir__`` here (and
    on the handler) answers with just those names, computed once per class.
    """

    #: aiosmtpd's limit is RFC 5321's 1,000 octets (plus one); see the module's docstring.
    line_length_limit = MAX_LINE

    def __dir__(self) -> list[str]:
        return list(_SMTP_HOOKS)

    def __init__(self, handler: InboxHandler, gate: SessionGate, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._gate = gate
        self._counted = False
        self._refused = False
        #: True while DATA waits for the mail to be stored.
        self.storing = False
        self.close_after_reply = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._counted and not self._refused:
            if not self._gate.enter(self):
                self._refused = True
                assert isinstance(transport, asyncio.WriteTransport)
                reason = (
                    b"Service shutting down" if self._gate.draining else b"Too many connections"
                )
                transport.write(b"421 4.3.2 " + reason + b"; try again later\r\n")
                transport.close()
                return
            self._counted = True
        super().connection_made(transport)

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
            self.refuse(b"421 4.3.2 Service shutting down")

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        try:
            super().connection_lost(error)
        finally:
            if self._counted:
                self._counted = False
                self._gate.leave(self)


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
) -> tuple[asyncio.Server, SessionGate]:
    """Serve SMTP on an already bound socket, on the running loop."""
    loop = asyncio.get_running_loop()
    handler = InboxHandler(inbound, limits)
    gate = SessionGate(limits.max_sessions)

    def factory() -> InboxSMTP:
        return InboxSMTP(
            handler,
            gate,
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

    server = await loop.create_server(factory, sock=sock)
    return server, gate
