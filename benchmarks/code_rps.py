"""Requests per second of ``GET /v1/credentials/{id}/code`` for a TOTP credential.

Starts ``otpgate serve`` on a fresh SQLite data directory on loopback, creates
a tenant and a credential with a TOTP authenticator, then drives the code
route with ``wrk`` (Debian package ``wrk``) and prints its figures.

Each code handed out writes an ``authenticator.read`` event to the audit
trail.  To show what that costs, the same build is measured with the trail
on and with it off (``OTPGATE_AUDIT=0``), in alternating rounds of one run,
and the ratio of the medians is printed.

    python benchmarks/code_rps.py [--seconds 10] [--rounds 3] [--connections 64] [--threads 1]

On a 2-core machine the gateway and wrk share the cores; ``--threads 1``
keeps wrk to one of them.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys

from harness import call, gateway


def measure(audit: bool, args: argparse.Namespace) -> tuple[float, str]:
    with gateway(OTPGATE_AUDIT="1" if audit else "0") as gw:
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
        if audit:
            events = call(gw.base, "/v1/audit?limit=1", None, key, method="GET")["events"]
            assert events, "the audit trail recorded nothing"
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{non2xx.group(1)} requests failed:\n{out}")
    return rps, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    results: dict[bool, list[float]] = {True: [], False: []}
    for n in range(args.rounds):
        # Alternate which goes first, so drift on a noisy machine hits both alike.
        for audit in (True, False) if n % 2 == 0 else (False, True):
            rps, out = measure(audit, args)
            results[audit].append(rps)
            label = "audit on " if audit else "audit off"
            print(f"round {n + 1}, {label}: {rps:.0f} requests/s")
    print(out)
    on, off = statistics.median(results[True]), statistics.median(results[False])
    print(f"GET code (TOTP), audit trail on: {on:.0f} requests/s (median of {args.rounds})")
    print(f"GET code (TOTP), audit trail off: {off:.0f} requests/s (median of {args.rounds})")
    print(f"ratio on/off: {on / off:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
