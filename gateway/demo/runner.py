"""``otpgate demo``: a gateway, a sample site with 2FA accounts of each kind, and an agent.

1. Starts ``otpgate serve`` as a child process with its own temporary data
   directory, a random admin key, loopback ports, ``OTPGATE_PUBLIC_URL`` set
   to its address and ``OTPGATE_TWILIO_AUTH_TOKEN`` set to a demo token (no
   ``OTPGATE_*`` variable of the caller's environment reaches it).
2. Starts the sample site (``site``) and enrols its accounts, as their
   owner would: a TOTP secret given to the gateway (as if scanned from the
   site's QR code), the credential's inbox as the account's email address
   (a code; or, for another account, a sign-in link), the credential's
   number as the account's phone, one account whose code goes to a person's own phone, and one
   that signs in by a push prompt the person approves, matching a number.
3. Leaves a trap: an earlier sign-in nobody finished put a code in the
   email account's inbox.  The agent must not type it: its login takes only
   what arrived after it opened.
4. Runs the agent (``agent``) in headless Chromium and prints what happened;
   last, two agents sign in to the email account at the same moment: the
   second queues behind the first's login, and both get in.

Everything is stopped and the data directory removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.client import AsyncClient, Secret

from ..app import ADAPTER_PATHS
from .agent import CHROMIUM, LoginReport, Target, run_agent
from .site import Account, DemoSite, new_totp_secret

Say = Callable[[str], None]

#: The Twilio auth token the demo's gateway checks and its site signs with.
TWILIO_TOKEN = "demo-twilio-auth-token-" + "0" * 8
START_TIMEOUT = 30.0


@dataclass
class Demo:
    """A running demo: the gateway, the site, and what the agent needs."""

    gateway_url: str
    api_key: Secret
    site: DemoSite
    site_url: str
    targets: list[Target]
    workdir: Path
    gateway_log: Path
    #: The credential whose inbox holds the trap's stale code.
    stale_credential: str | None = None

    @property
    def phone_url(self) -> str:
        return self.site_url + "/phone"


#: The gateway's log in the demo's directory (kept when the demo ends).
GATEWAY_LOG = "gateway.log"


def check_browser(chromium: Path) -> list[str]:
    """What is missing to run the agent's browser (empty: nothing)."""
    problems = []
    if not chromium.exists():
        problems.append(
            f"Chromium is not at {chromium}: install Debian's package "
            "(apt-get install chromium as root, or sudo apt-get install chromium) "
            "or pass --chromium PATH"
        )
    if importlib.util.find_spec("playwright") is None:
        problems.append(
            "Playwright for Python is not installed: pip install 'otpgate[browser]' "
            "(or pip install playwright; the system's Chromium is used, so "
            "'playwright install' is not needed)"
        )
    return problems


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def _gateway(workdir: Path, admin_key: str, say: Say) -> AsyncIterator[tuple[str, int]]:
    """``otpgate serve`` in a child process; yields its URL and SMTP port."""
    http_port, smtp_port = _free_port(), _free_port()
    url = f"http://127.0.0.1:{http_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTPGATE_")}
    env |= {
        "OTPGATE_DATA_DIR": str(workdir / "data"),
        "OTPGATE_HTTP": f"127.0.0.1:{http_port}",
        "OTPGATE_SMTP": f"127.0.0.1:{smtp_port}",
        "OTPGATE_ADMIN_KEY": admin_key,
        "OTPGATE_PUBLIC_URL": url,
        "OTPGATE_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
    }
    log_path = workdir / GATEWAY_LOG
    with log_path.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "serve",
            env=env,
            cwd=workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        await _ready(url, proc, log_path)
        say(f"gateway   {url} (SMTP on 127.0.0.1:{smtp_port}); its log: {log_path}")
        yield url, smtp_port
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _ready(url: str, proc: asyncio.subprocess.Process, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                tail = (await asyncio.to_thread(log_path.read_text, errors="replace"))[-2000:]
                raise RuntimeError(
                    f"the gateway stopped at start (status {proc.returncode}):\n{tail}"
                )
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the gateway did not answer within {START_TIMEOUT:g} s; see {log_path}")


@contextlib.asynccontextmanager
async def _site(site: DemoSite, say: Say) -> AsyncIterator[str]:
    runner = web.AppRunner(site.app(), access_log=None)
    await runner.setup()
    try:
        port = _free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        url = f"http://127.0.0.1:{port}"
        site.url = url
        say(f"site      {url} ({site.name}: server-rendered forms, a 2FA account of each kind)")
        yield url
    finally:
        await runner.cleanup()


def _password() -> str:
    return secrets.token_urlsafe(12)


@contextlib.asynccontextmanager
async def demo_environment(
    say: Say, *, workdir: Path | None = None, stale_code: bool = True
) -> AsyncIterator[Demo]:
    """Start the gateway and the site, enrol the accounts; stop everything at the end."""
    own_dir = workdir is None
    root = Path(tempfile.mkdtemp(prefix="otpgate-demo-")) if workdir is None else workdir
    admin_key = secrets.token_urlsafe(32)
    try:
        async with _gateway(root, admin_key, say) as (gateway_url, smtp_port):
            site = DemoSite(
                sms_webhook_url=gateway_url + ADAPTER_PATHS.twilio_sms,
                smtp_host="127.0.0.1",
                smtp_port=smtp_port,
                twilio_token=TWILIO_TOKEN,
            )
            async with _site(site, say) as site_url:
                async with AsyncClient(gateway_url, admin_key) as admin:
                    tenant = await admin.create_tenant("demo")
                demo = Demo(
                    gateway_url, tenant.api_key, site, site_url, [], root, root / GATEWAY_LOG
                )
                async with AsyncClient(gateway_url, tenant.api_key) as gate:
                    await _enrol(demo, gate, say, stale_code=stale_code)
                yield demo
    finally:
        if own_dir:
            # The demo's data (keys, database) goes; the gateway's log, which
            # the demo pointed to, stays for whoever wants to read it.
            for path in root.iterdir():
                if path.name != GATEWAY_LOG:
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
            if (root / GATEWAY_LOG).exists():
                say(f"the gateway's log is kept at {root / GATEWAY_LOG}")


async def _enrol(demo: Demo, gate: AsyncClient, say: Say, *, stale_code: bool) -> None:
    """The accounts, set up the way their owner would (see the module doc)."""
    site = demo.site

    async def credential(username: str, password: str) -> str:
        cred = await gate.create_credential(
            f"{site.name} ({username})", username=username, password=password
        )
        return cred.id

    # Email first, so the trap's stale code is as old as possible when the agent comes.
    password = _password()
    emma = await gate.credential(await credential("emma", password))
    site.add(Account("emma", password, "Emma", "email", email=emma.inbox))
    if stale_code:
        await site.start_login(site.accounts["emma"])
        demo.stale_credential = emma.id

    password = _password()
    tess = await credential("tess", password)
    site.add(Account("tess", password, "Tess", "totp", totp_secret=new_totp_secret()))
    await gate.set_authenticator(tess, otpauth_uri=site.totp_uri("tess"))

    password = _password()
    sam = await credential("sam", password)
    phone = "+14155550142"
    await gate.set_phone(sam, phone)
    site.add(Account("sam", password, "Sam", "sms", phone=phone))

    password = _password()
    pat = await credential("pat", password)
    site.add(Account("pat", password, "Pat", "person"))

    password = _password()
    lena = await gate.credential(await credential("lena", password))
    site.add(Account("lena", password, "Lena", "link", email=lena.inbox))

    password = _password()
    olly = await credential("olly", password)
    site.add(Account("olly", password, "Olly", "push"))

    demo.targets = [
        Target(tess, "authenticator app"),
        Target(emma.id, "email code"),
        Target(sam, "text message"),
        Target(pat, "a person gives the code", kind="person"),
        Target(lena.id, "sign-in link by mail", kind="link"),
        Target(olly, "push, number matching", kind="push"),
        Target(emma.id, "email code", agents=2),
    ]
    say(
        "enrolled  tess (TOTP secret handed to the gateway), emma (mail to "
        f"{emma.inbox}), sam (texts to {phone}), pat (texts to a person's own phone), "
        f"lena (sign-in links mailed to {lena.inbox}), olly (push prompts on a person's phone)"
    )
    if stale_code:
        say(
            "trap      an earlier sign-in nobody finished left a code in emma's inbox; "
            "the agent must not type it"
        )


async def run_demo(
    *, auto: bool, say: Say, chromium: Path = CHROMIUM, workdir: Path | None = None
) -> list[LoginReport]:
    """The whole demo; returns the agent's reports."""
    async with demo_environment(say, workdir=workdir) as demo:
        return await run_in(demo, auto=auto, say=say, chromium=chromium)


async def run_in(
    demo: Demo, *, auto: bool, say: Say, chromium: Path = CHROMIUM
) -> list[LoginReport]:
    """The agent's logins in a running demo environment."""
    return await run_agent(
        demo.gateway_url,
        demo.api_key,
        demo.site_url,
        demo.targets,
        say=say,
        auto=auto,
        phone_url=demo.phone_url,
        chromium=chromium,
    )


def summary(reports: Sequence[LoginReport]) -> list[str]:
    lines = [
        f"{sum(r.ok for r in reports)} of {len(reports)} logins went through "
        "(whole login; Sign in to verdict; queued behind another agent):"
    ]
    for r in reports:
        verdict = "accepted" if r.ok else r.outcome
        label = r.label if r.agent == "agent" else f"{r.label}, {r.agent}"
        queued = f"; queued {r.queued:5.2f} s" if r.queued > 0 else ""
        lines.append(
            f"  {r.username:<5} {label:<26} {verdict:<9} {r.seconds:6.2f} s; "
            f"{r.code_seconds:5.2f} s{queued}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gateway.demo.agent [--auto] [--chromium PATH]``: the same as ``otpgate demo``."""
    p = argparse.ArgumentParser(prog="otpgate demo", description=__doc__.split("\n")[0])
    p.add_argument(
        "--auto",
        action="store_true",
        help="a second browser page plays the person who gives a code and approves a push",
    )
    p.add_argument("--chromium", type=Path, default=CHROMIUM, help="the Chromium to drive")
    args = p.parse_args(argv)
    return run_cli(auto=args.auto, chromium=args.chromium)


def run_cli(*, auto: bool, chromium: Path = CHROMIUM) -> int:
    """Run the demo, printing as it goes; 0 when every login went through, 2 without a browser."""
    problems = check_browser(chromium)
    if problems:
        for problem in problems:
            print(f"otpgate demo: {problem}", file=sys.stderr)
        return 2

    def say(line: str) -> None:
        print(line, flush=True)

    say("otpgate demo: a gateway, a sample site with 2FA accounts of each kind, and an agent")
    try:
        reports = asyncio.run(run_demo(auto=auto, say=say, chromium=chromium))
    except KeyboardInterrupt:
        return 130
    for line in summary(reports):
        say(line)
    return 0 if reports and all(r.ok for r in reports) else 1
