"""Requests per second of ``GET /v1/credentials/{id}/code`` for a TOTP credential.

Starts ``otpgate serve`` on a fresh SQLite data directory on loopback, creates
a tenant and a credential with a TOTP authenticator, then drives the code
route with ``wrk`` (Debian package ``wrk``) and prints its figures.

    python benchmarks/code_rps.py [--seconds 15] [--connections 64] [--threads 1]

On a 2-core machine the gateway and wrk share the cores; ``--threads 1``
keeps wrk to one of them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

ADMIN = "benchmark-admin-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(base: str, method: str, path: str, body: Any, key: str) -> Any:
    req = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), method=method,
        headers={"Authorization": f"Bearer {key}"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    data = tempfile.mkdtemp(prefix="otpgate-bench-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "OTPGATE_DATA_DIR": data,
        "OTPGATE_HTTP": f"127.0.0.1:{port}",
        "OTPGATE_SMTP": f"127.0.0.1:{free_port()}",
        "OTPGATE_ADMIN_KEY": ADMIN,
        "OTPGATE_LOG_LEVEL": "warning",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve"], env=env, stdout=subprocess.DEVNULL
    )
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        key = call(base, "POST", "/v1/tenants", {"name": "bench"}, ADMIN)["api_key"]
        cred = call(base, "POST", "/v1/credentials", {"name": "bench"}, key)["id"]
        call(
            base, "PUT", f"/v1/credentials/{cred}/authenticator",
            {"secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "kind": "totp"}, key,
        )  # fmt: skip
        url = f"{base}/v1/credentials/{cred}/code"
        # A short warm-up, then the measured run.
        subprocess.run(
            ["wrk", "-t1", "-c8", "-d2s", "-H", f"Authorization: Bearer {key}", url],
            check=True, capture_output=True,
        )  # fmt: skip
        out = subprocess.run(
            [
                "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s",
                "--latency", "-H", f"Authorization: Bearer {key}", url,
            ],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        print(out)
        print(f"GET code (TOTP): {rps:.0f} requests/s, non-2xx: {non2xx.group(1) if non2xx else 0}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
