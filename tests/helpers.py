"""What the tests share: settings and keys, loopback servers, mails, waits and requirements.

Test modules import from here (and from ``twilio_fake``), never from one
another or from ``conftest``, which holds fixtures only.

Each outside thing a test needs (the PostgreSQL server, Chromium, Debian's
deployment tools, the corpus and vectors in ``../shared``) makes the test skip
with the reason when it is missing, unless its ``OTPGATE_REQUIRE_*`` variable
is ``1`` (``.ci/run`` sets them all), which makes that a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any, NoReturn

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gateway.app import Gateway, serving
from gateway.demo.agent import CHROMIUM
from gateway.listeners import bind
from gateway.settings import Address, Settings
from smtp.server import SessionGate

Client = TestClient[Any, Any]

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
OTPGATE = [sys.executable, "-m", "gateway"]

POSTGRES_URL = os.environ.get(
    "OTPGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
ADMIN_KEY = "test-admin-key-0123456789abcdef"


async def assert_error(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The response has *status* and the contract's error shape."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"].replace("_", "").isalpha()
    assert body["error"]["code"] == body["error"]["code"].lower()
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return body


@dataclasses.dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def raw_http(port: int, head: bytes, body: bytes = b"") -> RawAnswer:
    """Send *head* (request line and headers, as bytes, no final blank line) and *body* as they
    are, over a new connection to 127.0.0.1:*port*, and read the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.rstrip(b"\r\n") + b"\r\nConnection: close\r\n\r\n" + body)
        answer = await asyncio.wait_for(reader.read(), 20)
    finally:
        writer.close()
    top, _, rest = answer.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        chunks, data = b"", rest
        while data:
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if not size:
                break
            chunks, data = chunks + data[:size], data[size + 2 :]
        rest = chunks
    return RawAnswer(int(lines[0].split()[1]), headers, rest)


def assert_raw_error(answer: RawAnswer, status: int, code: str | None = None) -> None:
    """A raw answer has *status* and the contract's error shape."""
    assert answer.status == status, answer
    assert answer.headers.get("content-type", "").startswith("application/json"), answer
    body = answer.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    if code is not None:
        assert body["error"]["code"] == code, body


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


ADMIN = bearer(ADMIN_KEY)


async def owner_and_credential(http: Any, **credential: Any) -> tuple[str, dict[str, Any]]:
    """A new tenant's owner key and one credential of it, made through *http* (an
    ``aiohttp.ClientSession`` on the gateway's base URL) with the admin key."""
    async with http.post("/v1/tenants", json={"name": "acme"}, headers=ADMIN) as r:
        assert r.status == 201
        owner: str = (await r.json())["api_key"]
    body = {"name": "Acme", **credential}
    async with http.post("/v1/credentials", json=body, headers=bearer(owner)) as r:
        assert r.status == 201
        cred: dict[str, Any] = await r.json()
    return owner, cred


# -- requirements ---------------------------------------------------------------------


def missing(reason: str, requirement: str) -> NoReturn:
    """Skip the test for *reason*, or fail it when the variable *requirement* is ``1``."""
    if os.environ.get(requirement) == "1":
        pytest.fail(f"{reason}, and {requirement}=1")
    pytest.skip(reason)


def need_shared(*paths: Path) -> None:
    """Go on only when every file from ``../shared`` is there (``OTPGATE_REQUIRE_SHARED``)."""
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        missing(f"{', '.join(absent)} is absent", "OTPGATE_REQUIRE_SHARED")


def need_browser() -> None:
    """Go on only with Chromium and Playwright installed (``OTPGATE_REQUIRE_BROWSER``)."""
    absent = []
    if not CHROMIUM.exists():
        absent.append(f"{CHROMIUM} is not installed (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        absent.append("Playwright for Python is not installed in this environment")
    if absent:
        missing("; ".join(absent), "OTPGATE_REQUIRE_BROWSER")


def extra_env(name: str, requirements: list[str], requirement: str, *, heavy: bool = False) -> Path:
    """The Python of a virtual environment holding *requirements*, for a framework whose
    pinned versions cannot share the test environment (``OTPGATE_REQUIRE_...`` *requirement*).

    Made once with pip from the registries under ``.cache/`` (gitignored), and made
    again when the requirements change (or this tree's, when they install it).
    A *heavy* one is made only when *requirement* is ``1`` (CI sets it); otherwise
    the test skips, saying so.
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ours = any(str(ROOT) in r for r in requirements)
    extras = {k: v for k, v in project["optional-dependencies"].items() if k != "test"}
    deps = [project["dependencies"], extras] if ours else []
    key = json.dumps([requirements, deps]).encode()
    home = ROOT / ".cache" / f"{name}-{hashlib.sha256(key).hexdigest()[:12]}"
    python = home / "bin" / "python"
    if (home / "ready").exists():
        return python
    if heavy and os.environ.get(requirement) != "1":
        pytest.skip(f"{' '.join(requirements)} is large: {requirement}=1 installs it under .cache/")
    for old in (ROOT / ".cache").glob(f"{name}-*"):
        shutil.rmtree(old, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *requirements],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        missing(f"pip could not install {' '.join(requirements)}: {done.stderr[-800:]}",
                requirement)  # fmt: skip
    (home / "ready").write_text("")
    return python


def need_tool(tool: str, package: str) -> str:
    """The tool's path, when installed (``OTPGATE_REQUIRE_DEPLOY_TOOLS``)."""
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if path is None:
        missing(
            f"{tool} is not installed (Debian package {package})", "OTPGATE_REQUIRE_DEPLOY_TOOLS"
        )
    return path


@contextlib.contextmanager
def running(command: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    """*command* running for the block, its output in *log*; still running at the end of it."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield
        assert proc.poll() is None, log.read_text()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_port(port: int, seconds: float = 20) -> None:
    """Wait until something listens on the loopback *port* (a process just started)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


async def pg_admin(sql: str) -> None:
    """Run one statement on the server at ``POSTGRES_URL`` (creating or dropping databases)."""
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(prefix: str, purpose: str = "") -> str:
    """A new PostgreSQL database named *prefix* and a random tail, as the contract's URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    try:
        asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        reason = f"PostgreSQL is not reachable at {POSTGRES_URL} ({type(exc).__name__})"
        missing(f"{reason}{purpose}", "OTPGATE_REQUIRE_POSTGRES")
    return f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"


def drop_database(url: str) -> None:
    """Drop the database at *url*, even with connections still open."""
    name = url.rsplit("/", 1)[1]
    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def reset_postgres(url: str) -> None:
    """Empty the database at *url*: no tables, no migrations recorded."""
    import asyncpg

    conn = await asyncpg.connect(url, timeout=3)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


# -- settings and waits ---------------------------------------------------------------


def listening() -> socket.socket:
    """A listening socket on a free loopback port, for :func:`gateway.app.serving` to serve on."""
    return bind(Address("127.0.0.1", 0), "test listener")


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def reserved() -> socket.socket:
    """A loopback socket bound to a free port but not listening: connections are refused.

    A server started on it later (``sock=``) listens on that very port, with no
    window in which another process could take it.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    """A port free a moment ago, for a process the test starts that binds its own listeners."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_settings(tmp_path: Path, database_url: str | None = None, **env: str) -> Settings:
    """Settings for a gateway in *tmp_path* with the tests' admin key; *env* overrides."""
    base = {
        "OTPGATE_DATA_DIR": str(tmp_path / "data"),
        "OTPGATE_ADMIN_KEY": ADMIN_KEY,
        "OTPGATE_HTTP": f"127.0.0.1:{free_port()}",
    }
    if database_url:
        base["OTPGATE_DATABASE_URL"] = database_url
    base.update(env)
    return Settings.from_env(base)


@contextlib.asynccontextmanager
async def opened(settings: Settings, **options: Any) -> AsyncIterator[Gateway]:
    """The gateway as ``otpgate serve`` builds it, by default without listeners, workers or ingest.

    *options* are :func:`gateway.app.serving`'s (``http``, ``smtp``, ``background``, ``ingest``).
    """
    options = {"background": False, "ingest": False, **options}
    async with serving(settings, **options) as gw:
        yield gw


@contextlib.asynccontextmanager
async def replica_pair(
    tmp_path: Path, postgres_url: str, **env: str
) -> AsyncIterator[tuple[Gateway, Gateway]]:
    """Two gateways on one fresh PostgreSQL database and one key ring, each with its
    workers running and listening for the other's notifications."""
    await reset_postgres(postgres_url)
    async with (
        opened(make_settings(tmp_path, postgres_url, **env), background=True) as a,
        opened(make_settings(tmp_path, postgres_url, **env), background=True) as b,
    ):
        for gw in (a, b):
            assert gw.listener is not None
            await asyncio.wait_for(gw.listener.listening.wait(), 10)
        yield a, b


@dataclasses.dataclass
class Served:
    """A gateway served on loopback, and its base URL (and SMTP port, when it listens)."""

    url: str
    gateway: Gateway
    smtp_port: int | None = None

    @property
    def port(self) -> int:
        """The HTTP listener's port."""
        return int(self.url.rsplit(":", 1)[1])


@contextlib.asynccontextmanager
async def served_on_loopback(
    tmp_path: Path, *, background: bool = False, smtp: bool = False, **env: str
) -> AsyncIterator[Served]:
    """The real app on a loopback port whose address is also the public URL (SQLite).

    *smtp*: its SMTP listener too, on another loopback port (``Served.smtp_port``).
    """
    smtp_sock = listening() if smtp else None
    sock = listening()
    base = f"http://127.0.0.1:{port_of(sock)}"
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'data' / 'otpgate.db'}",
        OTPGATE_HTTP=f"127.0.0.1:{port_of(sock)}",
        OTPGATE_PUBLIC_URL=base,
        **env,
    )
    async with opened(settings, http=sock, smtp=smtp_sock, background=background) as gateway:
        yield Served(base, gateway, port_of(smtp_sock) if smtp_sock is not None else None)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    """Wait until *check* holds, failing the test after *within* seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail("the condition did not come true in time")
        await asyncio.sleep(0.02)


async def parked(gateway: Gateway, key: str, count: int = 1) -> None:
    """Wait until *count* long polls wait on *key* (a credential's or an interaction's id)."""

    async def waiting() -> bool:
        return gateway.bells.waiters(key) == count

    await eventually(waiting)


class Looks:
    """Watches an outbox runner read its queue, to see the moment it would have sent again.

    *owner*'s async function *name* (the read a runner makes on each pass) is
    replaced by one that records, per runner task, each pass that found nothing
    to do. "Nothing else was sent" is then proved by waiting until every runner
    has looked again and found its queue empty, rather than by sleeping.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> None:
        real = getattr(owner, name)
        self.passes = 0
        self.idle: list[tuple[int, asyncio.Task[Any] | None]] = []

        async def look(*args: Any, **kwargs: Any) -> Any:
            self.passes += 1
            number = self.passes
            found = await real(*args, **kwargs)
            if not found:
                self.idle.append((number, asyncio.current_task()))
            return found

        monkeypatch.setattr(owner, name, look)

    async def again(self, runners: int = 1, within: float = 20.0) -> None:
        """Wait until *runners* runners each began a pass after now and found nothing to do."""
        mark = self.passes

        async def looked() -> bool:
            return len({task for number, task in self.idle if number > mark}) >= runners

        await eventually(looked, within)


# -- mail -----------------------------------------------------------------------------


def send_mail(
    port: int,
    to: str | list[str],
    msg: EmailMessage | bytes,
    *,
    sender: str = "no-reply@service.example",
    starttls: ssl.SSLContext | None = None,
) -> Any:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        if starttls is not None:
            smtp.starttls(context=starttls)
        raw = msg.as_bytes(policy=SMTP_POLICY) if isinstance(msg, EmailMessage) else msg
        return smtp.sendmail(sender, to, raw)


def otp_mail(code: str, *, html_only: bool = False, sender: str = "no-reply@service.example"
             ) -> EmailMessage:  # fmt: skip
    msg = EmailMessage()
    msg["From"] = f"Service <{sender}>"
    msg["To"] = "agent@inbox.localhost"
    msg["Subject"] = "Your sign-in code"
    html = f"<html><body><p>Your verification code is</p><h1>{code}</h1></body></html>"
    if html_only:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(f"Your verification code is {code}. It expires in 10 minutes.")
        msg.add_alternative(html, subtype="html")
    return msg


@dataclasses.dataclass
class SmtpRig:
    """A gateway with its HTTP client and SMTP listener, and a tenant to use them."""

    gateway: Gateway
    client: Client
    port: int
    gate: SessionGate
    headers: dict[str, str]

    async def credential(self, name: str = "svc", **extraction: Any) -> dict[str, Any]:
        resp = await self.client.post("/v1/credentials", json={"name": name}, headers=self.headers)
        cred: dict[str, Any] = await resp.json()
        if extraction:
            resp = await self.client.put(
                f"/v1/credentials/{cred['id']}/extraction", json=extraction, headers=self.headers
            )
            assert resp.status == 200, await resp.text()
        return cred

    async def code(self, cred: dict[str, Any], query: str = "") -> tuple[int, Any]:
        resp = await self.client.get(
            f"/v1/credentials/{cred['id']}/code{query}", headers=self.headers
        )
        body = await resp.json() if resp.status == 200 else None
        return resp.status, body

    async def send(self, to: str | list[str], msg: EmailMessage | bytes, **kw: Any) -> Any:
        return await asyncio.to_thread(send_mail, self.port, to, msg, **kw)


@contextlib.asynccontextmanager
async def smtp_rig(
    settings: Settings,
    aiohttp_client: Callable[..., Any],
    tls: ssl.SSLContext | None = None,
    ingest: bool = False,
) -> AsyncIterator[SmtpRig]:
    """A gateway, its SMTP listener (and ingest worker if asked) and a tenant, torn down after."""
    sock = listening()
    async with opened(settings, smtp=sock, smtp_tls=tls, ingest=ingest) as gateway:
        assert gateway.smtp_sessions is not None
        client = await aiohttp_client(gateway.app, server_kwargs={"handler_cancellation": True})
        admin = {"Authorization": f"Bearer {settings.admin_key}"}
        tenant = await (await client.post("/v1/tenants", json={"name": "t"}, headers=admin)).json()
        yield SmtpRig(
            gateway,
            client,
            port_of(sock),
            gateway.smtp_sessions,
            {"Authorization": f"Bearer {tenant['api_key']}"},
        )


class Relay:
    """A real SMTP server on loopback that keeps what it is given.

    Its port is bound from the start; connections are refused until :meth:`start`.
    """

    def __init__(self) -> None:
        self._sock = reserved()
        self.port = port_of(self._sock)
        self.mails: list[tuple[str, list[str], bytes]] = []
        self.got = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.mails.append(
            (envelope.mail_from or "", list(envelope.rcpt_tos), envelope.original_content or b"")
        )
        self.got.set()
        return "250 OK"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTPServer(self, hostname="relay.test"), sock=self._sock
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._sock.close()


# -- webhooks -------------------------------------------------------------------------


@dataclasses.dataclass
class Seen:
    """One request a receiver got, and the status it answered."""

    headers: dict[str, str]
    raw: bytes  # every header line and the body, as they came over the wire
    body: bytes
    status: int


class Receiver:
    """A webhook endpoint on loopback that records every request it gets."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.status = 204
        self.delay = 0.0
        self.headers: dict[str, str] = {}
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self, sock: socket.socket | None = None) -> Receiver:
        """Listen on *sock* (see :func:`reserved`), or on a new loopback port."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock or listening()).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        raw = b"".join(k + b": " + v + b"\r\n" for k, v in request.raw_headers) + body
        status = self.status
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.seen.append(Seen(headers, raw, body, status))
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=status, headers=self.headers)

    def ok(self) -> list[Seen]:
        return [s for s in self.seen if 200 <= s.status < 300]


def verifies(secret: str, seen: Seen) -> bool:
    """Whether the Standard Webhooks reference implementation accepts *seen*'s signature."""
    try:
        Webhook(secret).verify(seen.body, seen.headers)
    except WebhookVerificationError:
        return False
    return True


def link_mail(url: str, to: str) -> EmailMessage:
    """A sign-in mail as sites send them: a button in HTML, the bare link in the text."""
    msg = EmailMessage()
    msg["From"] = "Acme Cloud <no-reply@acme.example>"
    msg["To"] = to
    msg["Subject"] = "Your sign-in link for Acme Cloud"
    msg.set_content(
        "Hi,\n\nClick the link below to sign in to Acme Cloud. It works once, for 15 minutes."
        f"\n\n{url}\n\nIf you did not ask to sign in, ignore this mail.\n"
    )
    msg.add_alternative(
        "<html><body><p>Hi,</p><p>Click the button below to sign in to Acme Cloud. It works "
        f'once, for 15 minutes.</p><p><a href="{url}" style="background:#2563eb;color:#fff;'
        'padding:12px 20px;border-radius:6px">Sign in to Acme Cloud</a></p>'
        "<p>If you did not ask to sign in, ignore this mail.</p></body></html>",
        subtype="html",
    )
    return msg


# -- `otpgate serve` as a process -----------------------------------------------------


def serve_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    """The process environment without any OTPGATE_ variable, then a data dir and ports."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("OTPGATE_")}
    return {
        **keep,
        "OTPGATE_DATA_DIR": str(data_dir),
        "OTPGATE_HTTP": f"127.0.0.1:{free_port()}",
        "OTPGATE_SMTP": f"127.0.0.1:{free_port()}",
        **overrides,
    }


class Server:
    """One ``otpgate serve`` process on free loopback ports."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.base = f"http://{env['OTPGATE_HTTP']}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> Server:
        # Output goes to files: a pipe nobody reads would fill up and stall the server.
        self.starts = getattr(self, "starts", 0) + 1
        self.out = self.cwd / f"serve-{self.starts}.out"
        self.err = self.cwd / f"serve-{self.starts}.err"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [*OTPGATE, "serve"], env=self.env, cwd=self.cwd, stdout=out, stderr=err
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.err.read_text()}")
            try:
                if self.call("GET", "/healthz")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("serve did not come up")

    def call(
        self, method: str, path: str, body: Any = None, key: str | None = None
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if key:
            req.add_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=20)
        return self.proc.returncode, self.out.read_text(), self.err.read_text()

    def kill(self) -> None:
        """End the process if it still runs (a fixture's teardown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
