"""What the benchmarks share: free ports, JSON calls, and a gateway in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ADMIN = "benchmark-admin-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int) -> None:
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def rss_kib(pid: int) -> int:
    """The resident memory of process *pid*, in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def call(base: str, path: str, body: Any, key: str, method: str = "POST") -> Any:
    req = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), method=method,
        headers={"Authorization": f"Bearer {key}"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@dataclass(frozen=True)
class Running:
    base: str
    smtp_port: int
    work: Path
    #: The gateway process (its ingest worker is a child of it).
    pid: int

    def tenant_key(self) -> str:
        return str(call(self.base, "/v1/tenants", {"name": "bench"}, ADMIN)["api_key"])


@contextlib.contextmanager
def gateway(database_url: str | None = None, **env: str) -> Iterator[Running]:
    """``otpgate serve`` on fresh loopback ports and a fresh data directory."""
    work = Path(tempfile.mkdtemp(prefix="otpgate-bench-"))
    http, smtp = free_port(), free_port()
    full = {
        **os.environ,
        "OTPGATE_DATA_DIR": str(work / "data"),
        "OTPGATE_HTTP": f"127.0.0.1:{http}",
        "OTPGATE_SMTP": f"127.0.0.1:{smtp}",
        "OTPGATE_ADMIN_KEY": ADMIN,
        **env,
    }
    if database_url:
        full["OTPGATE_DATABASE_URL"] = database_url
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], env=full)
    try:
        wait_port(http)
        wait_port(smtp)
        yield Running(f"http://127.0.0.1:{http}", smtp, work, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        shutil.rmtree(work, ignore_errors=True)
