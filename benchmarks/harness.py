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


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) process *pid* has used (Linux): its work, not the wait."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    #: Where ``gcprobe.py`` writes the collector's pauses (``gateway(gc_probe=True)``).
    gc_file: Path | None = None

    def tenant_key(self) -> str:
        return str(call(self.base, "/v1/tenants", {"name": "bench"}, ADMIN)["api_key"])

    def gc_pauses(self) -> dict[str, Any]:
        """The collector's pauses per generation since the last call (then counted afresh)."""
        assert self.gc_file is not None, "started without gc_probe"
        before = self.gc_file.stat().st_mtime_ns if self.gc_file.exists() else 0
        os.kill(self.pid, signal.SIGUSR2)
        for _ in range(400):
            if self.gc_file.exists() and self.gc_file.stat().st_mtime_ns != before:
                return dict(json.loads(self.gc_file.read_text()))
            time.sleep(0.01)
        raise RuntimeError("the gateway wrote no collector figures")


@contextlib.contextmanager
def gateway(
    database_url: str | None = None, *, gc_probe: bool = False, **env: str
) -> Iterator[Running]:
    """``otpgate serve`` on fresh loopback ports and a fresh data directory.

    With *gc_probe* it runs under ``gcprobe.py``: :meth:`Running.gc_pauses` reads
    the garbage collector's pauses.
    """
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
    gc_file = work / "gc.json" if gc_probe else None
    if gc_file is not None:
        full["BENCH_GC_FILE"] = str(gc_file)
        command = [sys.executable, str(Path(__file__).with_name("gcprobe.py")), "serve"]
    else:
        command = [sys.executable, "-m", "gateway", "serve"]
    proc = subprocess.Popen(command, env=full)
    try:
        wait_port(http)
        wait_port(smtp)
        yield Running(f"http://127.0.0.1:{http}", smtp, work, proc.pid, gc_file)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        shutil.rmtree(work, ignore_errors=True)
