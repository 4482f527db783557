"""The cost of data: GET /code, SMTP routing and the sweeper, on an empty store and a full one.

Starts ``otpgate serve`` (SQLite by default, or ``--database-url``), creates
500 credentials through the API and measures, on that nearly empty store:

- ``GET /v1/credentials/{id}/code`` (nothing there: 204), one call after another;
- SMTP routing: ``RCPT TO`` for each credential's inbox in turn, in one
  session (each inbox asked once, so the 2-second route cache never answers);
- one round of the sweeper (codes, interactions, logins and waits, SMS ids,
  page sessions, message counts, webhook attempts), run in this process on
  the same store.

Then it fills the store, with a second tenant's rows written directly:
``--credentials`` credentials (100,000), and ``--rows`` (1,000,000) each of
audit events, received codes (not yet expired) and webhook attempts (less
than a week old, so the sweeper has nothing to delete but must find that
out), and measures the same again.  Prints p50 and p99 of each, and the
full store's p50 over the empty one's (the target: within 1.2x).

    python benchmarks/scale.py [--database-url postgresql://...]
        [--credentials 100000] [--rows 1000000]

The database given must be empty (it is migrated, then filled).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from harness import ADMIN, call, gateway
from latency import expect, pct
from sqlalchemy import insert

import gateway.app as gateway_app
from gateway.app import Gateway, serving
from gateway.settings import Settings
from gateway.store.models import (
    AuditEvent,
    Credential,
    ReceivedCode,
    Tenant,
    Webhook,
    WebhookAttempt,
)

CHUNK = 10_000


async def get_code(base: str, key: str, creds: list[dict[str, Any]], n: int) -> list[float]:
    samples = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
        for i in range(n):
            started = time.perf_counter()
            async with http.get(f"{base}/v1/credentials/{creds[i % len(creds)]['id']}/code") as r:
                await r.read()
                assert r.status == 204, r.status
            samples.append((time.perf_counter() - started) * 1000)
    return samples


async def rcpt(port: int, creds: list[dict[str, Any]]) -> list[float]:
    samples = []
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await expect(reader, b"220")
    writer.write(b"EHLO bench.example\r\n")
    await expect(reader, b"250")
    for cred in creds:
        writer.write(b"MAIL FROM:<no-reply@service.example>\r\n")
        await expect(reader, b"250")
        started = time.perf_counter()
        writer.write(f"RCPT TO:<{cred['inbox']}>\r\n".encode())
        await expect(reader, b"250")
        samples.append((time.perf_counter() - started) * 1000)
        writer.write(b"RSET\r\n")
        await expect(reader, b"250")
    writer.write(b"QUIT\r\n")
    writer.close()
    return samples


def sweeps(gw: Gateway) -> list[Callable[[], Awaitable[Any]]]:
    s = gw.services
    return [
        s.codes.sweep, s.interactions.sweep, s.logins.sweep, s.sms.sweep,
        s.web_sessions.sweep, s.message_counts.sweep, s.webhook_endpoints.forget_attempts,
    ]  # fmt: skip


async def sweep_times(settings: Settings, n: int) -> list[float]:
    samples = []
    # A second gateway on a SQLite store is refused (its agents and mail would
    # split); this one only runs sweeper rounds on the served gateway's store,
    # with no listener and no waiting agent, so the lock is not taken for it.
    gateway_app._lock_sqlite = lambda settings: None
    async with serving(settings, background=False, ingest=False) as gw:
        for _ in range(n):
            started = time.perf_counter()
            for sweep in sweeps(gw):
                await sweep()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


async def fill(settings: Settings, credentials: int, rows: int) -> float:
    """Write the second tenant's rows; seconds taken."""
    started = time.perf_counter()
    now = time.time()
    tenant = "ten_filler"
    async with serving(settings, background=False, ingest=False) as gw:
        db = gw.db

        async def put(table: Any, make: Callable[[int], dict[str, Any]], count: int) -> None:
            for first in range(0, count, CHUNK):
                batch = [make(i) for i in range(first, min(count, first + CHUNK))]
                async with db.write() as conn:
                    await conn.execute(insert(table), batch)

        async with db.write() as conn:
            await conn.execute(
                insert(Tenant), [{"id": tenant, "name": "filler", "created_at": now}]
            )
            await conn.execute(insert(Webhook), [{
                "id": "wh_filler", "tenant_id": tenant, "url": "https://hooks.example/x",
                "events": "[]", "enabled": False, "data_key": b"x", "key_version": 1,
                "secret": b"x", "created_at": now,
            }])  # fmt: skip
        blob = secrets.token_bytes(60)
        await put(Credential, lambda i: {
            "id": f"cred_f{i:09d}", "tenant_id": tenant, "name": f"f{i}",
            "inbox": f"f{i:09d}", "data_key": blob, "key_version": 1,
            "created_at": now, "updated_at": now, "report_unsolicited": True,
        }, credentials)  # fmt: skip
        await put(AuditEvent, lambda i: {
            "tenant_id": tenant, "seq": i + 1, "at": "2026-01-01T00:00:00Z",
            "at_ts": now - i, "actor": '{"type":"system"}', "action": "code.read",
            "credential_id": f"cred_f{i % credentials:09d}", "object_id": None,
            "outcome": "ok", "prev_hash": "0" * 64, "hash": "0" * 64,
        }, rows)  # fmt: skip
        await put(ReceivedCode, lambda i: {
            "id": f"code_f{i:09d}", "tenant_id": tenant,
            "credential_id": f"cred_f{i % credentials:09d}", "source": "email",
            "kind": "code", "code": blob, "sender": "x@service.example",
            "received_at": now - 60, "expires_at": now + 30 * 86400,
        }, rows)  # fmt: skip
        await put(WebhookAttempt, lambda i: {
            "id": f"wha_f{i:09d}", "tenant_id": tenant, "webhook_id": "wh_filler",
            "event": "code.received", "attempt": 1, "at": now - (i % 86400),
            "outcome": "delivered", "status": 204,
        }, rows)  # fmt: skip
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--credentials", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    env = {
        "OTPGATE_LOG_LEVEL": "warning",
        "OTPGATE_INBOX_DOMAIN": "in.example",
        # The RCPT probe sends RSET after each recipient without ever sending a
        # mail: past the allowance of such commands a session gets 421.
        "OTPGATE_SMTP_MAX_IDLE_COMMANDS": "1000",
    }
    if args.calls > 1000:
        parser.error("--calls is at most 1000 (RSETs one SMTP session may send)")
    results: dict[str, dict[str, list[float]]] = {}
    with gateway(args.database_url, **env) as gw:
        store_env = {
            **os.environ, **env, "OTPGATE_ADMIN_KEY": ADMIN,
            "OTPGATE_DATA_DIR": str(Path(gw.work) / "data"),
        }  # fmt: skip
        if args.database_url:
            store_env["OTPGATE_DATABASE_URL"] = args.database_url
        settings = Settings.from_env(store_env)
        key = gw.tenant_key()
        creds = [
            call(gw.base, "/v1/credentials", {"name": f"c{i}"}, key) for i in range(args.calls)
        ]

        def measure(label: str) -> None:
            asyncio.run(get_code(gw.base, key, creds, 100))  # warm-up
            time.sleep(2.5)  # the route cache forgets every inbox
            results[label] = {
                "GET /code": asyncio.run(get_code(gw.base, key, creds, args.calls)),
                "RCPT TO": asyncio.run(rcpt(gw.smtp_port, creds)),
                "sweeper round": asyncio.run(sweep_times(settings, 20)),
            }

        measure("empty")
        took = asyncio.run(fill(settings, args.credentials, args.rows))
        print(
            f"filled {args.credentials} credentials and {args.rows} audit events, received "
            f"codes and webhook attempts each in {took:.0f} s"
        )
        measure("full")
    engine = "PostgreSQL" if args.database_url else "SQLite"
    for what in results["empty"]:
        empty, full = results["empty"][what], results["full"][what]
        print(
            f"{what} ({engine}): empty p50 {pct(empty, 0.5):.2f} ms p99 {pct(empty, 0.99):.2f} ms; "
            f"full p50 {pct(full, 0.5):.2f} ms p99 {pct(full, 0.99):.2f} ms; "
            f"ratio (p50) {pct(full, 0.5) / pct(empty, 0.5):.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
