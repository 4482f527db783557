"""Faults of the store: PostgreSQL restarting under load, SQLite's disk full.

A store that cannot be reached or written is a temporary condition: mail is
answered ``451`` (the sender keeps it and retries), the API ``503`` with
``Retry-After``, and the gateway takes mail again within seconds of the
store's return, without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import smtplib
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from .helpers import (
    ADMIN_KEY,
    POSTGRES_URL,
    Server,
    SmtpRig,
    assert_error,
    bearer,
    create_database,
    drop_database,
    free_port,
    make_settings,
    missing,
    opened,
    otp_mail,
    send_mail,
    serve_env,
    smtp_rig,
)

#: The figure the gateway must meet: seconds from PostgreSQL's return to a mail taken.
RECOVERY_GOAL = 5.0


def _pg_ctl(action: str) -> None:
    """Stop or start the PostgreSQL cluster the tests use (as ``.ci/run`` starts it)."""
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _need_pg_ctl() -> None:
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        missing(
            "pg_ctlcluster is not installed (Debian package postgresql)", "OTPGATE_REQUIRE_POSTGRES"
        )
    if os.geteuid() != 0:
        missing("stopping PostgreSQL needs root", "OTPGATE_REQUIRE_POSTGRES")


@dataclass
class Tally:
    """What the senders saw, with the time of each mail taken."""

    sent: int = 0
    accepted: list[float] = field(default_factory=list)
    retry: int = 0  # 4xx: the sender keeps the mail and tries again
    refused: list[str] = field(default_factory=list)  # 5xx: a bounce
    lost: list[str] = field(default_factory=list)  # taken but never handed out
    lock: threading.Lock = field(default_factory=threading.Lock)


def _code(server: Server, key: str, cred_id: str, deadline: float) -> Any:
    """The credential's code, asked again while the store is away (503), until *deadline*."""
    while time.monotonic() < deadline:
        req = urllib.request.Request(f"{server.base}/v1/credentials/{cred_id}/code?wait=5")
        req.add_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                if resp.status == 200:
                    return json.loads(resp.read())["code"]
        except urllib.error.HTTPError as exc:
            if exc.code != 503:
                return f"HTTP {exc.code}"
            if not exc.headers.get("Retry-After"):
                return "HTTP 503 without Retry-After"
        except OSError:
            pass
        time.sleep(0.1)
    return None


def _sender(
    server: Server, smtp_port: int, key: str, cred: dict[str, Any], n: int, tally: Tally,
    stop: threading.Event,
) -> None:  # fmt: skip
    """Send mail after mail to one inbox as a real MTA would; collect each taken code."""
    number = 0
    while not stop.is_set():
        code = f"{n:02d}{number:04d}"
        with tally.lock:
            tally.sent += 1
        try:
            send_mail(smtp_port, cred["inbox"], otp_mail(code))
        except smtplib.SMTPRecipientsRefused as exc:
            ((status, _reply),) = exc.recipients.values()
            _count(tally, status, f"RCPT {status}")
        except smtplib.SMTPResponseException as exc:
            _count(tally, exc.smtp_code, f"{type(exc).__name__} {exc.smtp_code}")
        except (OSError, smtplib.SMTPException) as exc:
            with tally.lock:
                tally.refused.append(f"connection: {type(exc).__name__}")
        else:
            with tally.lock:
                tally.accepted.append(time.monotonic())
            got = _code(server, key, cred["id"], time.monotonic() + 60)
            if got != code:
                with tally.lock:
                    tally.lost.append(f"{code}: got {got}")
            number += 1
            continue
        time.sleep(0.05)  # a sender's retry, much sooner than a real MTA's


def _count(tally: Tally, status: int, what: str) -> None:
    with tally.lock:
        if 400 <= status < 500:
            tally.retry += 1
        else:
            tally.refused.append(what)


def test_postgres_restart_under_mail_load_loses_and_bounces_nothing(tmp_path: Path) -> None:
    """With PostgreSQL stopped and started under load, no mail gets a 5xx, every mail
    answered 250 is handed out, and mail is taken again within seconds of its return."""
    _need_pg_ctl()
    url = create_database("otpgate_faults", " (the restart test)")
    env = serve_env(
        tmp_path / "data", OTPGATE_DATABASE_URL=url, OTPGATE_ADMIN_KEY=ADMIN_KEY,
        OTPGATE_SMTP_WORKER="1",
    )  # fmt: skip
    server = Server(env, tmp_path)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    tally = Tally()
    stopped = False
    try:
        server.start()
        status, tenant = server.call("POST", "/v1/tenants", {"name": "t"}, ADMIN_KEY)
        assert status == 201, tenant
        key = tenant["api_key"]
        smtp_port = int(env["OTPGATE_SMTP"].rsplit(":", 1)[1])
        creds = []
        for i in range(6):
            status, cred = server.call("POST", "/v1/credentials", {"name": f"c{i}"}, key)
            assert status == 201, cred
            creds.append(cred)
        for n, cred in enumerate(creds):
            t = threading.Thread(
                target=_sender, args=(server, smtp_port, key, cred, n, tally, stop), daemon=True
            )
            t.start()
            threads.append(t)
        _until(lambda: len(tally.accepted) >= 40, 60)
        _pg_ctl("stop")
        stopped = True
        down_at = time.monotonic()
        _until(lambda: time.monotonic() - down_at > 3, 30)  # a restart's few seconds
        _pg_ctl("start")
        stopped = False
        back_at = time.monotonic()
        _until(lambda: any(t > back_at for t in tally.accepted), 60)
        recovered = min(t for t in tally.accepted if t > back_at) - back_at
        _until(lambda: tally.sent >= 300, 120)
    finally:
        stop.set()
        if stopped:
            _pg_ctl("start")
        for t in threads:
            t.join(timeout=90)
        server.kill()
        with contextlib.suppress(Exception):
            drop_database(url)
    print(
        f"\nPostgreSQL restart: {tally.sent} mails sent, {len(tally.accepted)} answered 250, "
        f"{tally.retry} answered 4xx, {len(tally.refused)} answered 5xx, "
        f"{len(tally.accepted) - len(tally.lost)} of {len(tally.accepted)} handed out, "
        f"first mail taken {recovered:.2f} s after PostgreSQL was back"
    )
    assert tally.refused == []
    assert tally.lost == []
    assert tally.retry > 0, "the store was never found down: the test proved nothing"
    assert recovered < RECOVERY_GOAL


def _until(check: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("the condition did not come true in time")
        time.sleep(0.02)


@contextlib.contextmanager
def _small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of *size* mounted at *path*, unmounted afterwards (``OTPGATE_REQUIRE_MOUNT``)."""
    path.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        missing(
            f"cannot mount a small tmpfs for the full-disk test ({done.stderr.strip()})",
            "OTPGATE_REQUIRE_MOUNT",
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def _fill(path: Path) -> Path:
    """Write to a file under *path* until the disk is full."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):  # ENOSPC: full
            while os.write(fd, os.urandom(64 * 1024)):
                pass
        with contextlib.suppress(OSError):  # ENOSPC: full, down to the last block
            while os.write(fd, b"x" * 512):
                pass
    finally:
        os.close(fd)
    return filler


async def _mail_until_refused(rig: SmtpRig, cred: dict[str, Any], tries: int) -> list[int]:
    """Send mails until one is not taken; every reply's status, in order."""
    statuses = []
    for n in range(tries):
        try:
            await rig.send(cred["inbox"], otp_mail(f"{n:06d}"))
        except smtplib.SMTPRecipientsRefused as exc:
            ((status, _reply),) = exc.recipients.values()
            statuses.append(status)
            break
        except smtplib.SMTPResponseException as exc:
            statuses.append(exc.smtp_code)
            break
        statuses.append(250)
    return statuses


async def test_sqlite_on_a_full_disk_answers_451_and_503_and_recovers(
    tmp_path: Path, aiohttp_client: Callable[..., Any]
) -> None:
    """On a full disk SQLite mail gets 451 and the API 503 with Retry-After, the file
    stays sound, and mail is taken again once space returns, without a restart."""
    with _small_disk(tmp_path / "data", "3m") as data:
        settings = make_settings(
            tmp_path, f"sqlite:///{data / 'otpgate.db'}", OTPGATE_DATA_DIR=str(data)
        )
        async with smtp_rig(settings, aiohttp_client) as rig:
            cred = await rig.credential()
            await rig.send(cred["inbox"], otp_mail("111111"))
            assert (await rig.code(cred))[1]["code"] == "111111"
            filler = _fill(data)
            statuses = await _mail_until_refused(rig, cred, 300)
            assert statuses[-1] == 451, statuses
            resp = await rig.client.post(
                "/v1/credentials", json={"name": "more"}, headers=rig.headers
            )
            await assert_error(resp, 503, "store_unavailable")
            assert resp.headers["Retry-After"]
            filler.unlink()
            await rig.send(cred["inbox"], otp_mail("222222"))
            assert (await rig.code(cred))[1]["code"] == "222222"
            resp = await rig.client.post(
                "/v1/credentials", json={"name": "more"}, headers=rig.headers
            )
            assert resp.status == 201, await resp.text()
        with sqlite3.connect(data / "otpgate.db") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


TWILIO_TOKEN = "twilio-auth-token-0123456789abcdef"
PUBLIC = "https://otp.example.com"


async def test_texts_arriving_while_the_store_is_full_are_kept_and_taken_in_after(
    tmp_path: Path, aiohttp_client: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Twilio's and the Android app's webhooks are answered 200 while the database's disk is
    full, their texts kept sealed in the spool and handed out (and logged) once space returns."""
    caplog.set_level("INFO", logger="otpgate.sms")
    from twilio.request_validator import RequestValidator

    with _small_disk(tmp_path / "db", "3m") as db_dir:
        settings = make_settings(
            tmp_path,
            f"sqlite:///{db_dir / 'otpgate.db'}",
            OTPGATE_TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
            OTPGATE_PUBLIC_URL=PUBLIC,
        )
        async with opened(settings, background=True) as gw:
            api = await aiohttp_client(gw.app)
            resp = await api.post("/v1/tenants", json={"name": "t"}, headers=bearer(ADMIN_KEY))
            headers = bearer((await resp.json())["api_key"])
            creds = []
            for name in ("by-twilio", "by-android"):
                resp = await api.post("/v1/credentials", json={"name": name}, headers=headers)
                creds.append((await resp.json())["id"])
            phone = "+15005550123"
            resp = await api.put(
                f"/v1/credentials/{creds[0]}/phone", json={"phone_number": phone}, headers=headers
            )
            assert resp.status == 200, await resp.text()
            resp = await api.post(
                f"/v1/credentials/{creds[1]}/sms-devices", json={"device_id": "phone-1"},
                headers=headers,
            )  # fmt: skip
            device_key = (await resp.json())["signing_key"]
            filler = _fill(db_dir)

            params = {
                "MessageSid": "SM" + "1" * 32, "AccountSid": "AC" + "0" * 32,
                "From": "+15005550006", "To": phone, "Body": "Your code is 731904",
            }  # fmt: skip
            signature = RequestValidator(TWILIO_TOKEN).compute_signature(
                PUBLIC + "/sms/twilio", params
            )
            resp = await api.post(
                "/sms/twilio",
                data=urlencode(params),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": signature,
                },
            )
            assert resp.status == 200, await resp.text()
            raw = json.dumps({
                "deviceId": "phone-1", "event": "sms:received", "id": "ev-1",
                "payload": {"message": "Your code is 562018", "phoneNumber": "6505551212",
                            "simNumber": None},
            }).encode()  # fmt: skip
            stamp = str(int(time.time()))
            resp = await api.post(
                "/sms/android",
                data=raw,
                headers={
                    "Content-Type": "application/json",
                    "X-Timestamp": stamp,
                    "X-Signature": hmac.new(
                        device_key.encode(), raw + stamp.encode(), hashlib.sha256
                    ).hexdigest(),
                },
            )
            assert resp.status == 200, await resp.text()
            kept = gw.services.sms.spool.waiting()
            assert len(kept) == 2
            for path in kept:  # sealed: the codes are not on disk in clear
                assert b"731904" not in path.read_bytes()
                assert b"562018" not in path.read_bytes()

            filler.unlink()
            for cred, code in zip(creds, ("731904", "562018"), strict=True):
                resp = await api.get(f"/v1/credentials/{cred}/code?wait=20", headers=headers)
                assert resp.status == 200, await resp.text()
                assert (await resp.json())["code"] == code
            assert gw.services.sms.spool.waiting() == []
        accepted = [
            (getattr(r, "provider", None), getattr(r, "credential", None))
            for r in caplog.records
            if r.getMessage() == "accepted a text"
        ]
        assert accepted == [("twilio", creds[0]), ("android", creds[1])]
        assert "731904" not in caplog.text and "562018" not in caplog.text


class PgProxy:
    """A loopback TCP proxy to PostgreSQL that the test can take down and bring back.

    It stands for a database restart where only this test's connections need
    to see it: the server itself, shared with other tests, keeps running.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )

    async def down(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


async def test_the_wake_up_connection_is_back_within_seconds_of_the_database(
    tmp_path: Path,
) -> None:
    """After a database outage of several seconds, the LISTEN connection that wakes agents
    for mail taken by another replica is back within two seconds of the database."""
    from urllib.parse import urlsplit

    import asyncpg

    from gateway.services.replicas import WakeListener
    from gateway.services.waiters import Bells

    target = urlsplit(POSTGRES_URL)
    try:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
        await conn.close()
    except (OSError, asyncpg.PostgresError) as exc:
        missing(f"PostgreSQL is not reachable ({type(exc).__name__})", "OTPGATE_REQUIRE_POSTGRES")
    proxy = PgProxy((target.hostname or "127.0.0.1", target.port or 5432))
    await proxy.up()
    dsn = POSTGRES_URL.replace(target.netloc.rsplit("@", 1)[-1], f"127.0.0.1:{proxy.port}")
    listener = WakeListener(dsn, Bells())
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        await proxy.down()
        await asyncio.sleep(8)  # a slow restart; the listener keeps trying meanwhile
        assert not listener.listening.is_set()
        await proxy.up()
        back = time.monotonic()
        await asyncio.wait_for(listener.listening.wait(), 15)
        assert time.monotonic() - back < 2.0
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):
            await proxy.down()
