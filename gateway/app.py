"""The composition root: builds the gateway from a settings object.

Everything with a lifetime (the key ring, the database, the HTTP site, and
later the SMTP listener and workers) is opened here and handed to the modules
that need it as arguments.  ``run`` serves until SIGTERM or SIGINT and then
shuts down gracefully: it stops accepting, lets requests in flight finish and
closes the database, so nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

import sms
from sms.twilio_rest import TwilioRest
from smtp.server import SmtpLimits, start_smtp, tls_context
from smtp.worker import IngestWorker

from .api import SERVICES, Lifecycle, Services, error_middleware, setup_routes
from .errors import ConfigError
from .metrics import Metrics
from .services import keys
from .services.codes import CodeService
from .services.credentials import CredentialService
from .services.forwards import ForwardService
from .services.inbound import InboundService
from .services.interactions import InteractionService
from .services.replicas import Heartbeat, WakeListener
from .services.sms import SmsService
from .services.tenants import TenantService
from .services.waiters import Bells
from .services.webhooks import WebhookService
from .settings import Address, Settings
from .store.db import Database
from .vault import KeyRing, Vault

log = logging.getLogger("otpgate")

#: Largest request body the API reads; no JSON call needs more.
MAX_BODY = 64 * 1024
#: Seconds the outboxes get to finish the attempts under way on shutdown.
OUTBOX_GRACE = 20.0
#: Seconds in-flight requests get to finish on shutdown.
SHUTDOWN_GRACE = 10.0


@dataclass
class Gateway:
    """The opened parts of one running gateway."""

    settings: Settings
    keyring: KeyRing
    db: Database
    services: Services
    created_key: bool
    heartbeat: Heartbeat
    #: Wake-ups from other replicas (PostgreSQL only).
    listener: WakeListener | None
    bells: Bells

    @contextlib.asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        """Run the workers (sweepers, outboxes, key ring watcher) for the block's duration."""
        services = self.services
        tasks = [
            asyncio.create_task(_watch_keyring(self.keyring)),
            asyncio.create_task(_sweep(services)),
            asyncio.create_task(services.webhooks.run()),
            asyncio.create_task(services.forwards.run()),
            asyncio.create_task(self.heartbeat.run()),
        ]
        if self.listener is not None:
            tasks.append(asyncio.create_task(self.listener.run()))
        outboxes = tasks[2:4]
        try:
            yield
        finally:
            # The outboxes finish the attempts under way (bounded by their timeouts).
            services.webhooks.stop()
            services.forwards.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*outboxes, return_exceptions=True), OUTBOX_GRACE
                )
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.heartbeat.leave()

    def drain(self) -> None:
        """Start shutting down: /readyz answers 503, and every waiting agent gets 204."""
        self.services.lifecycle.draining = True
        self.heartbeat.draining = True
        self.bells.close()

    async def close(self) -> None:
        await self.services.inbound.close()
        await self.services.webhooks.close()
        if self.services.numbers is not None:
            await self.services.numbers.close()
        await self.db.close()


async def open_gateway(settings: Settings) -> Gateway:
    """Open the key ring and the database (migrating it) and build the services."""
    db = await Database.open(settings.database_url)
    try:
        keyring, created = await _open_keyring(settings, db)
        vault = Vault(keyring)
        bells = Bells()
        metrics = Metrics()
        inbound = InboundService(db, vault, bells, metrics, code_ttl=settings.code_ttl)
        webhooks = WebhookService(
            db,
            vault,
            metrics,
            allow_private=settings.allow_private_targets,
            public_url=settings.public_url,
        )
        numbers = _twilio(settings)
        forwards = ForwardService(
            db,
            vault,
            relay=settings.smtp_relay,
            mail_from=settings.forward_from,
            sms=numbers,
            sms_from=settings.twilio_sms_from,
            allow_private=settings.allow_private_targets,
            routes_changed=inbound.forget_routes,
        )
        inbound.forwards_queued.append(forwards.wake)
        inbound.events_queued.append(webhooks.wake)
        services = Services(
            settings=settings,
            db=db,
            metrics=metrics,
            tenants=TenantService(db, keyring, settings.admin_key),
            credentials=CredentialService(
                db, vault, settings.inbox_domain, routes_changed=inbound.forget_routes
            ),
            codes=CodeService(db, vault, bells),
            inbound=inbound,
            webhooks=webhooks,
            interactions=InteractionService(
                db,
                vault,
                bells,
                ttl=settings.interaction_ttl,
                public_url=settings.public_url,
                events_queued=webhooks.wake,
            ),
            forwards=forwards,
            sms=SmsService(db, vault, inbound, metrics, rate_limit=settings.sms_rate_limit),
            numbers=numbers,
            lifecycle=Lifecycle(),
        )
    except BaseException:
        await db.close()
        raise
    listener = (
        None
        if db.is_sqlite
        else WakeListener(db.libpq_dsn(), bells, routes_changed=inbound.forget_routes)
    )
    return Gateway(settings, keyring, db, services, created, Heartbeat(db), listener, bells)


async def _open_keyring(settings: Settings, db: Database) -> tuple[KeyRing, bool]:
    """Load the key ring, or make one for a new store; refuse a ring that cannot work."""
    path = settings.master_key_file
    in_use = await keys.usage(db)
    if not path.exists() and in_use:
        raise ConfigError(
            f"master key file {path} does not exist, but the database holds data sealed "
            "with a master key; restore the key file (see deploy/README.md)"
        )
    ring, created = KeyRing.load_or_create(path)
    missing = sorted(set(in_use) - set(ring.versions))
    if missing:
        raise ConfigError(
            f"master key file {path} lacks version(s) {missing} that the database still uses"
        )
    return ring, created


async def _watch_keyring(ring: KeyRing, every: float = 2.0) -> None:
    """Pick up a version that ``otpgate keys rotate`` (here or on another replica) added.

    Until it does, this process keeps wrapping new data keys under the previous
    version, which stays valid; the rotation's rewrap pass and ``keys retire``'s
    check take care of any key wrapped in that window.
    """
    last = ring.path.stat().st_mtime_ns
    while True:
        await asyncio.sleep(every)
        try:
            current = ring.path.stat().st_mtime_ns
            if current != last:
                ring.reload()
                last = current
                log.info("master key ring reloaded", extra={"active": ring.active_version})
        except (OSError, ConfigError) as exc:
            log.error("cannot reload the master key ring", extra={"error": str(exc)})


def _twilio(settings: Settings) -> TwilioRest | None:
    """Twilio's REST API, when both the account SID and the auth token are set."""
    if settings.twilio_account_sid is None or settings.twilio_auth_token is None:
        return None
    return TwilioRest(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        api_url=settings.twilio_api_url,
    )


async def _sweep(services: Services, every: float = 1.0) -> None:
    """Destroy received codes older than OTPGATE_CODE_TTL; expire open interactions."""
    rounds = 0
    while True:
        await asyncio.sleep(every)
        rounds += 1
        try:
            removed = await services.codes.sweep()
            expired = await services.interactions.sweep()
            if rounds % 60 == 0:
                await services.sms.sweep()
        except Exception:
            log.exception("a sweep failed; trying again")
            continue
        if removed:
            log.info("expired codes destroyed", extra={"count": removed})
        if expired:
            log.info("interactions expired", extra={"count": expired})


def smtp_limits(settings: Settings) -> SmtpLimits:
    return SmtpLimits(
        hostname=settings.smtp_hostname,
        domain=settings.inbox_domain,
        max_size=settings.smtp_max_size,
        max_recipients=settings.smtp_max_recipients,
        max_sessions=settings.smtp_max_sessions,
        idle_timeout=settings.smtp_idle_timeout,
    )


def _smtp_tls(settings: Settings) -> ssl.SSLContext | None:
    if settings.smtp_tls_cert is None or settings.smtp_tls_key is None:
        return None
    try:
        return tls_context(str(settings.smtp_tls_cert), str(settings.smtp_tls_key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"OTPGATE_SMTP_TLS_CERT/OTPGATE_SMTP_TLS_KEY: cannot load them ({exc})"
        ) from None


def make_app(services: Services) -> web.Application:
    """The aiohttp application for an opened gateway."""
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY)
    app[SERVICES] = services
    setup_routes(app)
    sms.setup_routes(app)
    return app


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


@contextlib.asynccontextmanager
async def http_site(app: web.Application, sock: socket.socket) -> AsyncIterator[web.AppRunner]:
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        access_log_class=AccessLogger,
        access_log=logging.getLogger("otpgate.access"),
        shutdown_timeout=SHUTDOWN_GRACE,
    )
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        yield runner
    finally:
        await runner.cleanup()


def _reason(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "the address is already in use"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "no interface has this address"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges)"
    return exc.strerror or str(exc)


async def run(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT."""
    http_sock = bind(settings.http, "OTPGATE_HTTP")
    try:
        smtp_sock = bind(settings.smtp, "OTPGATE_SMTP")
    except BaseException:
        http_sock.close()
        raise
    try:
        tls = _smtp_tls(settings)
        gateway = await open_gateway(settings)
    except BaseException:
        http_sock.close()
        smtp_sock.close()
        raise
    try:
        if gateway.created_key:
            log.info("generated a new master key", extra={"path": str(settings.master_key_file)})
        admin_key = await gateway.services.tenants.bootstrap_admin_key(settings.data_dir)
        if admin_key is not None:
            # Shown once, on standard output, never through the log.
            print(
                f"otpgate: created the admin API key (also saved to "
                f"{settings.data_dir / 'admin.key'}, mode 0600):\n{admin_key}",
                flush=True,
            )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        app = make_app(gateway.services)
        async with gateway.background():
            worker = IngestWorker(settings) if settings.smtp_worker else None
            if worker is not None:
                await worker.start()
                gateway.services.sms.offload = worker
            smtp_server, sessions = await start_smtp(
                smtp_sock, gateway.services.inbound, smtp_limits(settings), tls=tls, worker=worker
            )
            async with http_site(app, http_sock):
                log.info(
                    "otpgate is serving",
                    extra={
                        "http": str(settings.http),
                        "smtp": str(settings.smtp),
                        "database": gateway.db.dialect,
                    },
                )
                sys.stdout.flush()
                await stop.wait()
                log.info("shutting down")
                # /readyz turns 503 and waiting agents get 204 at once; new SMTP
                # sessions and idle ones get 421; a mail being stored still gets
                # its 250 (it waits for the commit), then its session closes.
                gateway.drain()
                smtp_server.close()
                sessions.drain()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(sessions.idle.wait(), SHUTDOWN_GRACE)
                if worker is not None:
                    gateway.services.sms.offload = None
                    await worker.close()
    finally:
        await gateway.close()
    log.info("stopped")
