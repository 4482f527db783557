"""The composition root: the one place where the gateway is built from its settings.

:func:`serving` is the gateway's lifetime, as an async context manager.  It
opens the key ring and the database, builds every service with its
collaborators passed to its constructor, and, for the block's duration, runs
what was asked for: the background workers (sweepers, outboxes, heartbeat,
key ring watcher, wake-ups from other replicas), the ingest worker process,
and the SMTP and HTTP listeners on sockets the caller bound.  Leaving the
block shuts down gracefully: it stops accepting, lets what is under way
finish and closes the database, so nothing acknowledged is lost.

``otpgate serve`` (:func:`run`), the CLI commands that open the store
(:func:`opened_store`), the ingest worker process (:func:`build_ingest`) and
the tests all build the gateway here, so none of them can wire it differently.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import gc
import ipaddress
import logging
import os
import signal
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

import sms
from sms.twilio_rest import TwilioRest
from smtp.server import SessionGate, SmtpLimits, start_smtp, tls_context

from .api import SERVICES, Lifecycle, Services, error_middleware, inputs, setup_routes
from .api.auth import AUTH_FAILURES
from .api.limits import body_deadline
from .errors import ConfigError
from .extraction.extractor import Extractor
from .ingest.worker import IngestWorker
from .listeners import LISTEN_BACKLOG, SHUTDOWN_GRACE, HttpLimits, bind, bound, start_http
from .logs import configure
from .metrics import Metrics
from .services import forward_delivery, keys, outbox, webhook_delivery
from .services.android import AndroidDevices
from .services.apikeys import ApiKeys
from .services.audit import AuditTrail
from .services.backup_codes import BackupCodes
from .services.codes import CodeService
from .services.counts import MessageCounts
from .services.credentials import CredentialService
from .services.forward_delivery import ForwardDelivery
from .services.forwards import ForwardRules
from .services.inbound import InboundService, RouteCache
from .services.interactions import InteractionService
from .services.logins import LoginService
from .services.outbox import Outbox
from .services.ratelimit import FailedAttempts
from .services.replicas import Heartbeat, WakeListener
from .services.skyvern import SkyvernEndpoints
from .services.sms import SmsService
from .services.spool import Spool
from .services.tenants import TenantService
from .services.waiters import Bells
from .services.webhook_delivery import WebhookDelivery
from .services.webhooks import WebhookEndpoints
from .services.websessions import WebSessions
from .settings import Settings
from .store.db import Database
from .vault import KeyRing, Vault
from .web import mount as mount_ui

log = logging.getLogger("otpgate")

#: Where the protocol adapters listen: the sms package declares its paths, and the
#: core learns the webhook URLs it shows to clients from this value only.
ADAPTER_PATHS = sms.PATHS
#: Largest request body the API reads; no JSON call needs more.
MAX_BODY = inputs.MAX_BODY
#: Seconds the outboxes get to finish the attempts under way on shutdown.
OUTBOX_GRACE = 20.0


@dataclass(frozen=True, slots=True)
class Tuning:
    """The clock the services read and the outboxes' timings.

    Production's by default; tests shorten the timings and move the clock
    (to lapse a lease, say) through here rather than by reaching into a
    service after it was built.
    """

    clock: Callable[[], float] = time.time
    #: Seconds between an outbox's looks when nothing wakes it.
    outbox_poll: float = outbox.POLL
    #: A forwarded copy's first retry delay; later ones double, up to an hour.
    forward_retry_base: float = forward_delivery.RETRY_BASE
    #: Seconds a webhook endpoint has to answer, and the delays between attempts.
    webhook_timeout: float = webhook_delivery.TIMEOUT
    webhook_retry_delays: tuple[float, ...] = webhook_delivery.RETRY_DELAYS


@dataclass
class Gateway:
    """One gateway opened by :func:`serving`."""

    settings: Settings
    keyring: KeyRing
    db: Database
    services: Services
    #: The HTTP application (served when :func:`serving` was given a socket).
    app: web.Application
    #: Whether this start generated the master key file.
    created_key: bool
    bells: Bells
    heartbeat: Heartbeat
    #: Wake-ups from other replicas (PostgreSQL only).
    listener: WakeListener | None
    #: The ingest worker process's handle, when one runs.
    worker: IngestWorker | None
    #: The SMTP listener's session gate, when it listens.
    smtp_sessions: SessionGate | None = None

    @contextlib.asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        """Run the workers (sweepers, outboxes, key ring watcher, heartbeat) for the block.

        :func:`serving` runs them for its whole block unless told not to; a
        test that needs them for part of it enters this instead.
        """
        services = self.services
        tasks = [
            asyncio.create_task(_watch_keyring(self.keyring)),
            asyncio.create_task(_sweep(services)),
            asyncio.create_task(services.webhook_outbox.run()),
            asyncio.create_task(services.forward_outbox.run()),
            asyncio.create_task(self.heartbeat.run()),
            # Texts kept while the store was away, taken in once it is back.
            asyncio.create_task(services.sms.spool.run(functools.partial(sms.replay, services))),
        ]
        if self.listener is not None:
            tasks.append(asyncio.create_task(self.listener.run()))
        outboxes = tasks[2:4]
        try:
            yield
        finally:
            # The outboxes finish the attempts under way (bounded by their timeouts).
            services.webhook_outbox.stop()
            services.forward_outbox.stop()
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


@contextlib.asynccontextmanager
async def serving(
    settings: Settings,
    *,
    http: socket.socket | None = None,
    smtp: socket.socket | None = None,
    smtp_tls: ssl.SSLContext | None = None,
    background: bool = True,
    ingest: bool | None = None,
    tuning: Tuning = Tuning(),
) -> AsyncIterator[Gateway]:
    """Open the gateway and run it for the block's duration; shut it down gracefully after.

    *http* and *smtp* are listening sockets already bound (see :func:`bind`):
    each is served when given, and closed on exit.  *smtp_tls* offers
    STARTTLS (default: the certificate the settings name, if any).
    *background* runs the sweepers, outboxes, heartbeat and wake-up listener;
    *ingest* the ingest worker process (default: ``OTPGATE_SMTP_WORKER``).
    *tuning* is for tests: a clock and shorter timings.
    """
    metrics = Metrics()
    use_worker = settings.smtp_worker if ingest is None else ingest
    worker = IngestWorker(settings, restarted=metrics.worker_restarts.inc) if use_worker else None
    lock = None
    try:
        tls = _smtp_tls(settings) if smtp_tls is None and smtp is not None else smtp_tls
        usable_data_dir(settings.data_dir)
        lock = _lock_sqlite(settings)
        db = await Database.open(settings.database_url)
        try:
            gw = await _build(settings, db, worker, metrics, tuning)
        except BaseException:
            await db.close()
            raise
        try:
            async with gw.background() if background else contextlib.nullcontext():
                server = runner = None
                try:
                    if worker is not None:
                        await worker.start()
                    if smtp is not None:
                        server, gw.smtp_sessions = await start_smtp(
                            smtp,
                            gw.services.inbound,
                            smtp_limits(settings),
                            tls=tls,
                            backlog=LISTEN_BACKLOG,
                        )
                        smtp = None  # the server owns it now
                    if http is not None:
                        runner = await start_http(gw.app, http, http_limits(settings))
                        http = None
                    yield gw
                finally:
                    # Waiting agents get 204 and /readyz 503 at once; the SMTP
                    # listener stops and drains, the worker finishes what it has,
                    # HTTP requests in flight end, and then (leaving the block)
                    # the outboxes finish the attempts under way.
                    gw.drain()
                    if server is not None and gw.smtp_sessions is not None:
                        await _stop_smtp(server, gw.smtp_sessions)
                    if worker is not None:
                        await worker.close()
                    if runner is not None:
                        await runner.cleanup()
        finally:
            await _close(gw)
    finally:
        for unused in (http, smtp):  # never handed to a server: the start failed
            if unused is not None:
                unused.close()
        if lock is not None:
            os.close(lock)


def usable_data_dir(path: Path) -> None:
    """Make the data directory if needed and check it can be written, or say why not in a line."""
    if path.exists() and not path.is_dir():
        reason = "it is not a directory (a file is in its place)"
    else:
        try:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            probe = path / f".write-probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
            return
        except OSError as exc:
            reason = exc.strerror or str(exc)
    raise ConfigError(f"the data directory {path} (OTPGATE_DATA_DIR) cannot be used: {reason}")


def _lock_sqlite(settings: Settings) -> int | None:
    """Hold a lock beside a SQLite database for the gateway's lifetime (None on PostgreSQL).

    Two gateways on one SQLite file would each wake only their own waiting
    agents, and a mail taken by one would never reach an agent waiting on the
    other: the second is refused, naming the process that holds the lock.
    """
    if not settings.is_sqlite:
        return None
    db_file = Path(settings.database_url.split("///", 1)[1])
    usable_data_dir(db_file.parent)
    path = db_file.parent / (db_file.name + ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise ConfigError(
            f"another otpgate (pid {holder}) is serving {db_file}; stop it first, or give this "
            "one its own OTPGATE_DATA_DIR (several replicas share PostgreSQL, not SQLite)"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


async def _build(
    settings: Settings, db: Database, worker: IngestWorker | None, metrics: Metrics, tuning: Tuning
) -> Gateway:
    """Open the key ring and build the services on *db*."""
    clock = tuning.clock
    keyring, created = await _open_keyring(settings, db)
    vault = Vault(keyring)
    bells = Bells()
    routes = RouteCache()
    webhook_outbox = Outbox(
        WebhookDelivery(
            db,
            vault,
            allow_private=settings.allow_private_targets,
            public_url=settings.public_url,
            clock=clock,
            timeout=tuning.webhook_timeout,
            retry_delays=tuning.webhook_retry_delays,
        ),
        poll=tuning.outbox_poll,
    )
    numbers = _twilio(settings)
    forward_outbox = Outbox(
        ForwardDelivery(
            db,
            vault,
            relay=settings.smtp_relay,
            mail_from=settings.forward_from,
            sms=numbers,
            sms_from=settings.twilio_sms_from,
            clock=clock,
            retry_base=tuning.forward_retry_base,
        ),
        poll=tuning.outbox_poll,
    )
    inbound = InboundService(
        db,
        vault,
        bells,
        metrics,
        extractor=Extractor(),
        code_ttl=settings.code_ttl,
        routes=routes,
        offload=worker,
        forwards_queued=forward_outbox.wake,
        events_queued=webhook_outbox.wake,
        clock=clock,
    )
    audit = AuditTrail(db, enabled=settings.audit, clock=clock)
    listening: list[WakeListener] = []
    tenants = TenantService(
        db,
        keyring,
        settings.admin_key,
        audit,
        # SQLite has one process: every revocation is made, and heard, here.
        hears_revocations=lambda: db.is_sqlite or listening[0].listening.is_set(),
        clock=clock,
    )
    if not db.is_sqlite:
        listening.append(
            WakeListener(
                db.libpq_dsn(),
                bells,
                routes_changed=routes.forget,
                keys_changed=tenants.forget_keys,
            )
        )
    codes = CodeService(db, vault, audit, bells, clock=clock)
    logins = LoginService(db, codes, audit, bells, metrics, clock=clock)
    services = Services(
        settings=settings,
        db=db,
        metrics=metrics,
        tenants=tenants,
        audit=audit,
        apikeys=ApiKeys(db, tenants, audit, clock=clock),
        credentials=CredentialService(
            db, vault, settings.inbox_domain, audit, routes_changed=routes.forget
        ),
        codes=codes,
        logins=logins,
        backup_codes=BackupCodes(db, vault, audit, events_queued=webhook_outbox.wake, clock=clock),
        skyvern=SkyvernEndpoints(
            db, vault, keyring, logins, audit, public_url=settings.public_url, clock=clock
        ),
        inbound=inbound,
        webhook_endpoints=WebhookEndpoints(
            db, vault, allow_private=settings.allow_private_targets, clock=clock
        ),
        webhook_outbox=webhook_outbox,
        interactions=InteractionService(
            db,
            vault,
            bells,
            audit,
            ttl=settings.interaction_ttl,
            public_url=settings.public_url,
            events_queued=webhook_outbox.wake,
            clock=clock,
        ),
        forward_rules=ForwardRules(
            db,
            relay=settings.smtp_relay,
            sms=numbers,
            allow_private=settings.allow_private_targets,
            routes_changed=routes.forget,
            clock=clock,
        ),
        forward_outbox=forward_outbox,
        sms=SmsService(
            db,
            inbound,
            metrics,
            rate_limit=settings.sms_rate_limit,
            spool=Spool(settings.data_dir / "spool", vault),
            offload=worker,
            clock=clock,
        ),
        android=AndroidDevices(db, vault, clock=clock),
        numbers=numbers,
        lifecycle=Lifecycle(),
        adapters=ADAPTER_PATHS,
        web_sessions=WebSessions(db, keyring, clock=clock),
        message_counts=MessageCounts(db, clock=clock),
    )
    listener = listening[0] if listening else None
    return Gateway(
        settings=settings,
        keyring=keyring,
        db=db,
        services=services,
        app=make_app(services),
        created_key=created,
        bells=bells,
        heartbeat=Heartbeat(db),
        listener=listener,
        worker=worker,
    )


async def _stop_smtp(server: asyncio.Server, sessions: SessionGate) -> None:
    """New and idle sessions get 421; a mail being stored still gets its 250 (after the commit)."""
    server.close()
    sessions.drain()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(sessions.idle.wait(), SHUTDOWN_GRACE)


async def _close(gw: Gateway) -> None:
    await gw.services.codes.waits.settle()
    await gw.services.inbound.close()
    await gw.services.audit.close()
    with contextlib.suppress(Exception):
        await gw.services.tenants.flush_last_used()
    if gw.services.numbers is not None:
        await gw.services.numbers.close()
    await gw.db.close()


@contextlib.asynccontextmanager
async def opened_store(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Database]:
    """The database alone, for the CLI commands that read or change it (migrate, status, keys).

    Without *migrate* the database must exist already: reading one never creates it.
    """
    db = await Database.open(settings.database_url, migrate=migrate, existing=not migrate)
    try:
        yield db
    finally:
        await db.close()


@contextlib.asynccontextmanager
async def build_ingest(settings: Settings) -> AsyncIterator[InboundService]:
    """What the ingest worker process stores with: the store, the vault and an inbound service.

    The gateway that started the worker migrated the database and made the
    key ring; the worker only opens them.  Waking agents and outboxes is the
    gateway's part (it announces each commit the worker reports).
    """
    configure(settings.log_format, settings.log_level)
    async with opened_store(settings, migrate=False) as db:
        inbound = InboundService(
            db,
            Vault(KeyRing.load(settings.master_key_file)),
            Bells(),
            Metrics(),
            extractor=Extractor(),
            code_ttl=settings.code_ttl,
        )
        try:
            yield inbound
        finally:
            await inbound.close()


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
    """Destroy received codes older than OTPGATE_CODE_TTL; expire open interactions.

    Every few rounds it also writes the API keys' ``last_used_at``; every
    minute it forgets old SMS message ids and ended sessions of the pages;
    every hour, the message counts older than the charts show and the week-old
    record of webhook attempts.
    """
    rounds = 0
    while True:
        await asyncio.sleep(every)
        rounds += 1
        try:
            removed = await services.codes.sweep()
            expired = await services.interactions.sweep()
            await services.logins.sweep()
            if rounds % 60 == 0:
                await services.sms.sweep()
                await services.web_sessions.sweep()
            if rounds % 3600 == 1:
                await services.message_counts.sweep()
                await services.webhook_endpoints.forget_attempts()
            if rounds % 5 == 0:
                await services.tenants.flush_last_used()
        except Exception:
            log.exception("a sweep failed; trying again")
            continue
        if removed:
            log.info("expired codes destroyed", extra={"count": removed})
        if expired:
            log.info("interactions expired", extra={"count": expired})


def http_limits(settings: Settings) -> HttpLimits:
    return HttpLimits(
        header_timeout=settings.http_header_timeout,
        max_connections_per_client=settings.http_max_connections_per_client,
        trusted_proxies=settings.http_trusted_proxies,
    )


def smtp_limits(settings: Settings) -> SmtpLimits:
    return SmtpLimits(
        hostname=settings.smtp_hostname,
        domain=settings.inbox_domain,
        max_size=settings.smtp_max_size,
        max_recipients=settings.smtp_max_recipients,
        max_sessions=settings.smtp_max_sessions,
        idle_timeout=settings.smtp_idle_timeout,
        max_sessions_per_client=settings.smtp_max_sessions_per_client,
        new_client_share=settings.smtp_new_client_share,
        session_lifetime=settings.smtp_session_lifetime,
        max_idle_commands=settings.smtp_max_idle_commands,
        proxy_protocol=settings.smtp_proxy_protocol,
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
    app = web.Application(middlewares=[error_middleware, body_deadline], client_max_size=MAX_BODY)
    app[SERVICES] = services
    app[AUTH_FAILURES] = FailedAttempts(services.settings.auth_failures_per_minute)
    setup_routes(app)
    sms.setup_routes(app)
    mount_ui(app, services)
    return app


async def run(settings: Settings) -> None:
    """``otpgate serve``: bind the listeners, then serve until SIGTERM or SIGINT."""
    http_sock = bind(settings.http, "OTPGATE_HTTP")
    try:
        smtp_sock = bind(settings.smtp, "OTPGATE_SMTP")
    except BaseException:
        http_sock.close()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serving(settings, http=http_sock, smtp=smtp_sock) as gateway:
        if gateway.created_key:
            log.info("generated a new master key", extra={"path": str(settings.master_key_file)})
        admin_key = await gateway.services.tenants.bootstrap_admin_key(settings.data_dir)
        if admin_key is not None:
            _show_admin_key(admin_key, settings.data_dir / "admin.key")
        _warn_local_public_url(settings)
        settle_heap()
        log.info(
            "otpgate is serving",
            extra={
                # The addresses bound: with port 0 in the setting, the one the system chose.
                "http": str(bound(settings.http, http_sock)),
                "smtp": str(bound(settings.smtp, smtp_sock)),
                "database": gateway.db.dialect,
                "data_dir": str(settings.data_dir.resolve()),
            },
        )
        sys.stdout.flush()
        await stop.wait()
        log.info("shutting down")
    log.info("stopped")


#: A full collection waits for this many younger ones (CPython's default is 10).
FULL_COLLECTION_EVERY = 100


def settle_heap() -> None:
    """Keep the garbage collector's full passes short and rare once ``serve`` has started.

    A full pass walks every tracked object, and each parked long poll adds
    some sixty.  CPython runs one whenever the long-lived objects have grown
    by a quarter, so 10,000 agents arriving meant seven passes over a growing
    heap, stalling every request for up to a second on a busy machine
    (``benchmarks/waiters.py`` counts them).  What start-up built lives as
    long as the process: it is frozen out of every pass; and a full pass also
    waits for :data:`FULL_COLLECTION_EVERY` younger ones.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


def _show_admin_key(admin_key: str, path: Path) -> None:
    """The generated admin key: in its file, and on the terminal, never in a log stream.

    Standard output that is not a terminal (journald, docker logs, a file) is
    a log stream: the key is then only in the file.
    """
    if sys.stdout.isatty():
        print(
            f"otpgate: created the admin API key (also saved to {path}, mode 0600):\n{admin_key}",
            flush=True,
        )
    else:
        print(f"otpgate: created the admin API key; read it from {path} (mode 0600)", flush=True)


def _warn_local_public_url(settings: Settings) -> None:
    """Warn when links would point at this host's wildcard or loopback address."""
    if settings.public_url != f"http://{settings.http}":
        return  # OTPGATE_PUBLIC_URL is set
    host = urlsplit(settings.public_url).hostname or ""
    try:
        local = ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        local = host == "localhost"
    if local:
        log.warning(
            "OTPGATE_PUBLIC_URL is not set: links (submit pages, webhooks) and Twilio's "
            "signature check use %s, which nobody else can reach; set it to the URL the "
            "outside world uses",
            settings.public_url,
        )
