"""``otpgate serve`` as a real process: start-up, bad configuration, durability, live rotation."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import OTPGATE, Server, free_port, missing, serve_env


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return serve_env(tmp_path / "data")


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    srv = Server(env, tmp_path)
    yield srv
    srv.kill()


def run_cli(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OTPGATE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_first_start_makes_keys_and_serves(server: Server, tmp_path: Path) -> None:
    """A first start creates a 0600 master key and admin key (not shown in a log stream), says
    which data directory it serves from, warns that no public URL is set, and serves."""
    server.start()
    data = tmp_path / "data"
    for name in ("master.key", "admin.key"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "otpgate.db").stat().st_mode) & 0o077 == 0
    admin = (data / "admin.key").read_text().strip()
    assert admin.startswith("otpgadm_")
    status, tenant = server.call("POST", "/v1/tenants", {"name": "acme"}, admin)
    assert status == 201
    status, body = server.call("GET", "/readyz")
    assert (status, body) == (200, {"status": "ready"})
    code, out, err = server.stop()
    assert code == 0
    # Standard output here is a file, a log stream: the key is only in its file.
    assert admin not in out and admin not in err and tenant["api_key"] not in err
    assert str(data / "admin.key") in out
    serving = [line for line in err.splitlines() if "otpgate is serving" in line]
    assert len(serving) == 1 and f"data_dir={data.resolve()}" in serving[0], err
    # No OTPGATE_PUBLIC_URL, and OTPGATE_HTTP on loopback: links would lead nowhere.
    assert any(" WARNING " in line and "OTPGATE_PUBLIC_URL" in line for line in err.splitlines())
    # A second start prints no key: the store is no longer empty.
    server.start()
    code, out, _ = server.stop(signal.SIGINT)
    assert code == 0 and "otpgadm_" not in out


def test_kill_9_right_after_a_reply_loses_nothing(server: Server, env: dict[str, str]) -> None:
    """Everything answered with a 2xx is still there after kill -9 and a restart."""
    env["OTPGATE_ADMIN_KEY"] = "admin-key-for-this-test-0123456789"
    server.start()
    _, tenant = server.call("POST", "/v1/tenants", {"name": "t"}, env["OTPGATE_ADMIN_KEY"])
    key = tenant["api_key"]
    made = []
    for i in range(20):
        status, cred = server.call(
            "POST", "/v1/credentials", {"name": f"c{i}", "password": f"p{i}"}, key
        )
        assert status == 201
        made.append(cred["id"])
    status, _ = server.call(
        "PUT", f"/v1/credentials/{made[-1]}/authenticator",
        {"secret": "JBSWY3DPEHPK3PXP", "kind": "hotp"}, key,
    )  # fmt: skip
    assert status == 200
    status, first = server.call("GET", f"/v1/credentials/{made[-1]}/code", key=key)
    assert status == 200
    server.stop(signal.SIGKILL)
    server.start()
    status, listed = server.call("GET", "/v1/credentials?limit=1000", key=key)
    assert status == 200 and sorted(c["id"] for c in listed["credentials"]) == sorted(made)
    assert server.call("GET", f"/v1/credentials/{made[3]}/password", key=key)[1] == {
        "password": "p3"
    }
    # The HOTP counter step that was handed out before the crash is never repeated.
    status, second = server.call("GET", f"/v1/credentials/{made[-1]}/code", key=key)
    assert second["code"] != first["code"]
    server.stop()


def test_keys_rotate_while_serving(server: Server, env: dict[str, str]) -> None:
    """`otpgate keys rotate` in another process rewraps every key while reads keep succeeding."""
    env["OTPGATE_ADMIN_KEY"] = "admin-key-for-this-test-0123456789"
    server.start()
    _, tenant = server.call("POST", "/v1/tenants", {"name": "t"}, env["OTPGATE_ADMIN_KEY"])
    key = tenant["api_key"]
    creds = [
        server.call("POST", "/v1/credentials", {"name": f"c{i}", "password": "pw"}, key)[1]["id"]
        for i in range(40)
    ]
    failures: list[Any] = []
    reads = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            status, body = server.call(
                "GET", f"/v1/credentials/{creds[reads % 40]}/password", key=key
            )
            if status != 200 or body != {"password": "pw"}:
                failures.append((status, body))
            reads += 1

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        result = run_cli(env, "keys", "rotate")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert result.returncode == 0, result.stderr
    assert "version 2 is active; rewrapped 40" in result.stdout
    assert failures == [] and reads > 0
    # The serving process picks up the new version for keys it wraps from now on.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        server.call("POST", "/v1/credentials", {"name": "late"}, key)
        listing = run_cli(env, "keys", "list").stdout
        if "version 1: wraps 0" in listing:
            break
        run_cli(env, "keys", "rotate", "--rewrap-only")
        time.sleep(0.5)
    refused = run_cli(env, "keys", "retire", "2")
    assert refused.returncode == 1 and "still wraps 41" in refused.stderr
    assert run_cli(env, "keys", "retire", "1").returncode == 0
    assert server.call("GET", f"/v1/credentials/{creds[0]}/password", key=key)[0] == 200
    server.stop()


def _start_error(env: dict[str, str], cwd: Path) -> str:
    result = run_cli(env, "serve", cwd=cwd)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("otpgate: ")
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("OTPGATE_HTTP", "localhost", "HOST:PORT"),
        ("OTPGATE_HTTP", "127.0.0.1:99999", "port"),
        ("OTPGATE_HTTP", "::1:8080", "brackets"),
        ("OTPGATE_SMTP", "127.0.0.1:http", "port"),
        ("OTPGATE_DATABASE_URL", "mysql://root@localhost/x", "unknown scheme"),
        ("OTPGATE_DATABASE_URL", "not a url", "not a URL"),
        ("OTPGATE_CODE_TTL", "forever", "OTPGATE_CODE_TTL"),
        ("OTPGATE_ALLOW_PRIVATE_TARGETS", "maybe", "OTPGATE_ALLOW_PRIVATE_TARGETS"),
        ("OTPGATE_PUBLIC_URL", "ftp://x", "OTPGATE_PUBLIC_URL"),
        ("OTPGATE_SMTP_RELAY", "mail.example.com", "OTPGATE_SMTP_RELAY"),
        ("OTPGATE_ADMIN_KEY", "short", "24 characters"),
        ("OTPGATE_TWILIO_SHARED_KEYS", "only-a-secret-0123456789", "KEY_ID=SECRET"),
        ("OTPGATE_TWILIO_SHARED_KEYS", "wk_1=short-secret", "wk_1 must be 16 to 512"),
    ],
)
def test_bad_settings_stop_the_start(
    env: dict[str, str], tmp_path: Path, name: str, value: str, fragment: str
) -> None:
    """A bad setting ends `serve` with exit 2 and one line that says what is wrong."""
    env[name] = value
    assert fragment in _start_error(env, tmp_path)


def test_malformed_requests_are_one_warning_line(server: Server, tmp_path: Path) -> None:
    """A request aiohttp cannot parse is answered 400 and logged as one WARNING line: no
    traceback, and none of the request's bytes (a header's value may be a secret)."""
    server.start()
    host, port = server.env["OTPGATE_HTTP"].rsplit(":", 1)
    canary = "Bearer canary-token-7c1d"
    for raw in (
        f"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization {canary}\r\n\r\n",  # no colon
        f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: {canary}\x01\r\n\r\n",  # a control byte
        f"GET /{canary.replace(' ', '')} HTTP/9.9\r\nHost: x\r\n\r\n",  # no such version
    ):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(raw.encode())
            status_line = sock.recv(1024).split(b"\r\n", 1)[0]
            assert status_line.split(b" ")[1] == b"400", (raw, status_line)
    assert server.call("GET", "/healthz")[0] == 200
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=30)
    log = server.err.read_text()
    warnings = [line for line in log.splitlines() if "malformed HTTP request" in line]
    assert len(warnings) == 3, log
    assert all(" WARNING " in line and "127.0.0.1" in line for line in warnings), log
    assert "Traceback" not in log and " ERROR " not in log
    assert "canary-token-7c1d" not in log


def test_port_in_use_stops_the_start(env: dict[str, str], tmp_path: Path) -> None:
    """A listen address already taken is one clear line and exit 2."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        env["OTPGATE_HTTP"] = f"127.0.0.1:{sock.getsockname()[1]}"
        line = _start_error(env, tmp_path)
    assert "already in use" in line and "OTPGATE_HTTP" in line


@pytest.mark.parametrize(
    ("content", "mode", "fragment"),
    [
        (None, 0o644, "group or others"),
        (None, 0o640, "group or others"),
        (b"{not json", 0o600, "malformed"),
        (b'{"format": "other"}', 0o600, "malformed"),
    ],
)
def test_bad_key_file_stops_the_start(
    env: dict[str, str], tmp_path: Path, content: bytes | None, mode: int, fragment: str
) -> None:
    """A group/world-readable or malformed master key file is refused in one line."""
    key = tmp_path / "keys" / "master.key"
    key.parent.mkdir()
    env["OTPGATE_MASTER_KEY_FILE"] = str(key)
    if content is None:
        # Make a good ring first, then loosen its mode.
        assert run_cli(env, "migrate", cwd=tmp_path).returncode == 0
        first = Server(env, tmp_path).start()
        first.stop()
    else:
        key.write_bytes(content)
    key.chmod(mode)
    line = _start_error(env, tmp_path)
    assert fragment in line and str(key) in line


def test_unreadable_key_path_stops_the_start(env: dict[str, str], tmp_path: Path) -> None:
    """A key file path that cannot be read (here: under a regular file) is one clear line."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    env["OTPGATE_MASTER_KEY_FILE"] = str(blocker / "master.key")
    assert "master.key" in _start_error(env, tmp_path)


def test_missing_key_file_with_sealed_data_is_refused(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    """Losing the key file is refused at start rather than silently making a new key."""
    env["OTPGATE_ADMIN_KEY"] = "admin-key-for-this-test-0123456789"
    server.start()
    _, tenant = server.call("POST", "/v1/tenants", {"name": "t"}, env["OTPGATE_ADMIN_KEY"])
    server.call("POST", "/v1/credentials", {"name": "c"}, tenant["api_key"])
    server.stop()
    (tmp_path / "data" / "master.key").unlink()
    assert "does not exist" in _start_error(env, tmp_path)


def _otp_mail(code: str) -> bytes:
    return (
        "From: Service <no-reply@service.example>\r\nSubject: Your code\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\nYour verification code is {code}.\r\n"
    ).encode()


def test_kill_9_after_250_loses_no_mail(server: Server, env: dict[str, str]) -> None:
    """100 mails answered 250, then kill -9 and a restart: every one of the 100 codes is there."""
    import smtplib

    env["OTPGATE_ADMIN_KEY"] = "admin-key-for-this-test-0123456789"
    server.start()
    _, tenant = server.call("POST", "/v1/tenants", {"name": "t"}, env["OTPGATE_ADMIN_KEY"])
    key = tenant["api_key"]
    creds = [server.call("POST", "/v1/credentials", {"name": f"c{i}"}, key)[1] for i in range(100)]
    host, port = env["OTPGATE_SMTP"].rsplit(":", 1)
    codes = {}
    for i, cred in enumerate(creds):
        code = f"{(i * 7919 + 100003) % 1000000:06d}"
        with smtplib.SMTP(host, int(port), timeout=10) as smtp:
            assert smtp.sendmail("a@service.example", cred["inbox"], _otp_mail(code)) == {}
        codes[cred["id"]] = code
    server.stop(signal.SIGKILL)
    server.start()
    for cred_id, code in codes.items():
        status, body = server.call("GET", f"/v1/credentials/{cred_id}/code", key=key)
        assert (status, body["code"]) == (200, code)
    server.stop()


def test_extract_command_reads_json_lines(env: dict[str, str], tmp_path: Path) -> None:
    """`otpgate extract` answers one {"id", "code", "link"} line per input line, in order."""
    magic = "https://app.example.com/auth/magic?token=Zx81kQp2Lm9Rt4Vb7Nc3"
    lines = [
        {"id": "a", "channel": "sms", "text": "Your verification code is 482913"},
        {"id": "b", "channel": "sms", "text": "Your order 12345 has shipped"},
        {"id": "c", "channel": "email", "subject": "Sign in", "html": "<p>Code: <b>771204</b></p>"},
        {"id": "d", "channel": "email", "subject": "Sign in to Example",
         "html": f'<p>Click to sign in:</p><p><a href="{magic}">Sign in</a></p>'},
    ]  # fmt: skip
    result = subprocess.run(
        [*OTPGATE, "extract"],
        input="".join(json.dumps(line) + "\n" for line in lines),
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert out == [
        {"id": "a", "code": "482913", "link": None},
        {"id": "b", "code": None, "link": None},
        {"id": "c", "code": "771204", "link": None},
        {"id": "d", "code": None, "link": magic},
    ]


def test_admin_key_is_shown_on_a_terminal(env: dict[str, str], tmp_path: Path) -> None:
    """On a terminal the first start shows the generated admin key once."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*OTPGATE, "serve"], env=env, cwd=tmp_path, stdout=slave, stderr=subprocess.DEVNULL
    )
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while b"otpgadm_" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                seen += os.read(master, 4096)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        os.close(master)
    admin = (tmp_path / "data" / "admin.key").read_text().strip()
    assert admin.encode() in seen


def test_serve_help_lists_the_main_settings(env: dict[str, str], tmp_path: Path) -> None:
    """`otpgate serve --help` lists the main settings with their defaults."""
    result = run_cli(env, "serve", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("OTPGATE_DATA_DIR", "OTPGATE_DATABASE_URL", "OTPGATE_HTTP", "OTPGATE_SMTP",
                 "OTPGATE_INBOX_DOMAIN", "OTPGATE_PUBLIC_URL"):  # fmt: skip
        assert name in result.stdout
    assert "127.0.0.1:8080" in result.stdout


def test_a_data_dir_that_is_a_file_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    """A file where the data directory should be: one line naming the path and why, exit 2."""
    (tmp_path / "data").write_text("not a directory")
    line = _start_error(env, tmp_path)
    assert str(tmp_path / "data") in line and "not a directory" in line


def test_a_read_only_data_dir_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    """A data directory on a read-only mount: one line naming the path and why, exit 2."""
    data = tmp_path / "data"
    data.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(data)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        missing(f"cannot mount a read-only tmpfs ({done.stderr.strip()})", "OTPGATE_REQUIRE_MOUNT")
    try:
        line = _start_error(env, tmp_path)
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)
    assert str(data) in line and "Read-only file system" in line


def test_a_second_serve_on_one_sqlite_data_dir_is_refused(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    """A second `serve` on the data directory a running one uses refuses to start, naming
    the process that holds it; the first keeps serving."""
    server.start()
    assert server.proc is not None
    second = dict(env, OTPGATE_HTTP=f"127.0.0.1:{free_port()}",
                  OTPGATE_SMTP=f"127.0.0.1:{free_port()}")  # fmt: skip
    line = _start_error(second, tmp_path)
    assert f"pid {server.proc.pid}" in line and str(tmp_path / "data") in line
    assert server.call("GET", "/readyz")[0] == 200
