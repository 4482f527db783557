"""Prepare a shared store for gateway replicas: migrate it and make the key ring if none exists.

compose.yaml runs this once (its ``init`` service) before the replicas start,
with the key ring volume writable; the replicas then mount it read-only. It
opens the store exactly as ``otpgate serve`` does, so the same safety checks
apply: migrations run under PostgreSQL's advisory lock, a new key ring is
made only for a store that holds no sealed data, and a missing or incomplete
ring for a store that does is refused (exit status 2, one line on stderr)
instead of being replaced.
"""

from __future__ import annotations

import asyncio
import os
import sys

from gateway.app import serving
from gateway.errors import ConfigError, OtpgateError
from gateway.settings import Settings


async def prepare(settings: Settings) -> str:
    async with serving(settings, background=False, ingest=False) as gateway:
        ring = gateway.keyring
        made = "made" if gateway.created_key else "found"
        return (
            f"otpgate: database ready; {made} key ring {ring.path} "
            f"(active version {ring.active_version})"
        )


def main() -> int:
    os.umask(0o077)  # as `otpgate serve`: the database and key files are the gateway's alone
    try:
        print(asyncio.run(prepare(Settings.from_env())), flush=True)
    except ConfigError as exc:
        print(f"otpgate: {exc}", file=sys.stderr)
        return 2
    except OtpgateError as exc:
        print(f"otpgate: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
