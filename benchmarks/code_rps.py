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
import re
import shutil
import subprocess
import sys

from harness import call, gateway


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    with gateway() as gw:
        key = gw.tenant_key()
        cred = call(gw.base, "/v1/credentials", {"name": "bench"}, key)["id"]
        call(
            gw.base, f"/v1/credentials/{cred}/authenticator",
            {"secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "kind": "totp"}, key, method="PUT",
        )  # fmt: skip
        url = f"{gw.base}/v1/credentials/{cred}/code"
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
