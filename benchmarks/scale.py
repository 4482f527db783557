"""The cost of data: GET /code, SMTP routing and the sweeper, on an empty store and a full one.

Starts two ``otpgate serve`` (SQLite by default, or PostgreSQL with
``--database-url`` and ``--empty-database-url``), creates 500 credentials
through the API on each, then fills one store with a second tenant's rows
written directly: ``--credentials`` credentials (100,000), and ``--rows``
(1,000,000) each of audit events, received codes (not yet expired) and
webhook attempts (less than a week old, so the sweeper has nothing to
delete but must find that out).  Then it measures, on both stores:

- ``GET /v1/credentials/{id}/code`` (nothing there: 204), one call after another;
- SMTP routing: ``RCPT TO`` for each credential's inbox in turn, in one
  session per store (each inbox asked once, so the 2-second route cache
  never answers);
- one round of the sweeper (codes, interactions, logins and waits, SMS ids,
  page sessions, message counts, webhook attempts), run in this process on
  the same store.

The probes alternate between the two stores (empty then full, full then
empty, and so on), so load from anything else on the machine falls on both
alike and the ratio stays fair on a shared machine.  Prints p50 and p99 of
each and the full store's p50 over the empty one's (the target: within
1.2x), then what does not depend on load at all, from this process on each
store: the statements each operation runs and, on SQLite, the virtual
machine steps SQLite takes for them (``GET /code`` as the code service's
call behind it, ``RCPT TO`` as the route lookup).

    python benchmarks/scale.py [--database-url postgresql://.../full
        --empty-database-url postgresql://.../empty]
        [--credentials 100000] [--rows 1000000] [--calls 500]

The databases given must be empty (they are migrated, then filled).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from harness import ADMIN, Running, call, gateway
from latency import expect, pct
from sqlalchemy import Engine, event, insert

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
STORES = ("empty", "full")


def sweeps(gw: Gateway) -> list[Callable[[], Awaitable[Any]]]:
    s = gw.services
    return [
        s.codes.sweep, s.interactions.sweep, s.logins.sweep, s.sms.sweep,
        s.web_sessions.sweep, s.message_counts.sweep, s.webhook_endpoints.forget_attempts,
    ]  # fmt: skip


async def sweep_round(gw: Gateway) -> None:
    for sweep in sweeps(gw):
        await sweep()


class Store:
    """One gateway under test: its process, its tenant and credentials, its settings."""

    def __init__(self, running: Running, settings: Settings, calls: int) -> None:
        self.running = running
        self.settings = settings
        tenant = call(running.base, "/v1/tenants", {"name": "bench"}, ADMIN)
        self.tenant_id: str = tenant["id"]
        self.key: str = tenant["api_key"]
        self.creds: list[dict[str, Any]] = [
            call(running.base, "/v1/credentials", {"name": f"c{i}"}, self.key) for i in range(calls)
        ]


def alternating(i: int) -> tuple[str, ...]:
    """Empty first on even probes, full first on odd ones."""
    return STORES if i % 2 == 0 else STORES[::-1]


async def get_codes(stores: dict[str, Store], n: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in stores}
    async with contextlib.AsyncExitStack() as stack:
        http = {
            name: await stack.enter_async_context(
                aiohttp.ClientSession(headers={"Authorization": f"Bearer {store.key}"})
            )
            for name, store in stores.items()
        }
        for i in range(n):
            for name in alternating(i):
                store = stores[name]
                cred = store.creds[i % len(store.creds)]
                url = f"{store.running.base}/v1/credentials/{cred['id']}/code"
                started = time.perf_counter()
                async with http[name].get(url) as r:
                    await r.read()
                    assert r.status == 204, r.status
                samples[name].append((time.perf_counter() - started) * 1000)
    return samples


@contextlib.asynccontextmanager
async def smtp_session(
    port: int,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await expect(reader, b"220")
    writer.write(b"EHLO bench.example\r\n")
    await expect(reader, b"250")
    try:
        yield reader, writer
    finally:
        writer.write(b"QUIT\r\n")
        writer.close()


async def rcpts(stores: dict[str, Store], first: int, n: int) -> dict[str, list[float]]:
    """RCPT TO for the inboxes *first* .. *first* + *n* - 1 of each store, alternating."""
    samples: dict[str, list[float]] = {name: [] for name in stores}
    async with contextlib.AsyncExitStack() as stack:
        sessions = {
            name: await stack.enter_async_context(smtp_session(store.running.smtp_port))
            for name, store in stores.items()
        }
        for i in range(first, first + n):
            for name in alternating(i):
                reader, writer = sessions[name]
                inbox = stores[name].creds[i % len(stores[name].creds)]["inbox"]
                writer.write(b"MAIL FROM:<no-reply@service.example>\r\n")
                await expect(reader, b"250")
                started = time.perf_counter()
                writer.write(f"RCPT TO:<{inbox}>\r\n".encode())
                await expect(reader, b"250")
                samples[name].append((time.perf_counter() - started) * 1000)
                writer.write(b"RSET\r\n")
                await expect(reader, b"250")
    return samples


@contextlib.asynccontextmanager
async def in_process(stores: dict[str, Store]) -> AsyncIterator[dict[str, Gateway]]:
    """A gateway in this process on each store: no listener, no background work."""
    async with contextlib.AsyncExitStack() as stack:
        yield {
            name: await stack.enter_async_context(
                serving(store.settings, background=False, ingest=False)
            )
            for name, store in stores.items()
        }


async def sweep_times(gws: dict[str, Gateway], n: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in gws}
    for i in range(n):
        for name in alternating(i):
            started = time.perf_counter()
            await sweep_round(gws[name])
            samples[name].append((time.perf_counter() - started) * 1000)
    return samples


class Tally:
    """Statements run, and SQLite's virtual machine steps, while it is counting."""

    def __init__(self) -> None:
        self.statements = 0
        self.steps = 0
        self._counting = False
        self._watched: list[sqlite3.Connection] = []
        event.listen(Engine, "before_cursor_execute", self._executing)

    def _step(self) -> int:
        self.steps += 1
        return 0  # carry on

    def _executing(self, conn: Any, *_: Any) -> None:
        if not self._counting:
            return
        self.statements += 1
        raw = conn.connection.dbapi_connection
        if isinstance(raw, sqlite3.Connection) and all(raw is not w for w in self._watched):
            self._watched.append(raw)
            raw.set_progress_handler(self._step, 1)

    async def per_call(self, calls: list[Callable[[], Awaitable[Any]]]) -> tuple[float, float]:
        """Statements and steps per call, over *calls*."""
        self.statements = self.steps = 0
        self._counting = True
        try:
            for one in calls:
                await one()
        finally:
            self._counting = False
            for raw in self._watched:  # a step handler slows every statement down
                raw.set_progress_handler(None, 1)
            self._watched.clear()
        return self.statements / len(calls), self.steps / len(calls)


async def cpu_times(calls: dict[str, list[Callable[[], Awaitable[Any]]]]) -> dict[str, float]:
    """This thread's CPU microseconds per call on each store, the stores alternating."""
    spent = dict.fromkeys(calls, 0.0)
    n = min(len(c) for c in calls.values())
    for i in range(n):
        for name in alternating(i):
            started = time.thread_time()
            await calls[name][i]()
            spent[name] += time.thread_time() - started
    return {name: total / n * 1e6 for name, total in spent.items()}


def route_lookup(gw: Gateway, inbox: str) -> Callable[[], Awaitable[Any]]:
    async def lookup() -> None:
        assert await gw.services.inbound.route_for_inbox(inbox) is not None

    return lookup


def code_call(gw: Gateway, tenant_id: str, cred_id: str) -> Callable[[], Awaitable[Any]]:
    async def take() -> None:
        assert await gw.services.codes.code(tenant_id, cred_id) is None

    return take


async def counted(
    stores: dict[str, Store], gws: dict[str, Gateway]
) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Statements, SQLite VM steps and CPU microseconds per call on each store.

    Statements and steps over half of the credentials, CPU time over the
    other half (a route once found is cached; counting steps one by one
    costs far more than the steps).
    """
    tally = Tally()
    found: dict[str, dict[str, tuple[float, float, float]]] = {name: {} for name in gws}
    for what in ("GET /code", "RCPT TO", "sweeper round"):
        halves: dict[str, tuple[list[Any], list[Any]]] = {}
        calls: list[Callable[[], Awaitable[Any]]]
        for name, gw in gws.items():
            store = stores[name]
            if what == "GET /code":
                calls = [code_call(gw, store.tenant_id, c["id"]) for c in store.creds]
            elif what == "RCPT TO":
                calls = [route_lookup(gw, c["inbox"].split("@")[0]) for c in store.creds]
            else:
                calls = [functools.partial(sweep_round, gw)] * 100
            halves[name] = calls[: len(calls) // 2], calls[len(calls) // 2 :]
        counts = {name: await tally.per_call(half[0]) for name, half in halves.items()}
        cpu = await cpu_times({name: half[1] for name, half in halves.items()})
        for name in gws:
            found[name][what] = (*counts[name], cpu[name])
    return found


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
    parser.add_argument("--database-url", default=None, help="the store to fill (PostgreSQL)")
    parser.add_argument("--empty-database-url", default=None, help="the store left empty")
    parser.add_argument("--credentials", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    if (args.database_url is None) != (args.empty_database_url is None):
        parser.error("--database-url and --empty-database-url go together")
    if args.calls > 500:
        parser.error("--calls is at most 500 (RSETs one SMTP session may send, twice over)")
    env = {
        "OTPGATE_LOG_LEVEL": "warning",
        "OTPGATE_INBOX_DOMAIN": "in.example",
        # The RCPT probe sends RSET after each recipient without ever sending a
        # mail: past the allowance of such commands a session gets 421.
        "OTPGATE_SMTP_MAX_IDLE_COMMANDS": "1000",
    }
    urls = {"empty": args.empty_database_url, "full": args.database_url}
    load = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        stores: dict[str, Store] = {}
        for name in STORES:
            running = stack.enter_context(gateway(urls[name], **env))
            store_env = {
                **os.environ, **env, "OTPGATE_ADMIN_KEY": ADMIN,
                "OTPGATE_DATA_DIR": str(Path(running.work) / "data"),
            }  # fmt: skip
            if urls[name]:
                store_env["OTPGATE_DATABASE_URL"] = urls[name]
            stores[name] = Store(running, Settings.from_env(store_env), args.calls)
        # A second gateway on a SQLite store is refused (its agents and mail
        # would split); this process's only write rows or run the store's own
        # calls, with no listener and no waiting agent, so no lock is taken.
        gateway_app._lock_sqlite = lambda settings: None
        took = asyncio.run(fill(stores["full"].settings, args.credentials, args.rows))
        print(
            f"filled {args.credentials} credentials and {args.rows} audit events, received "
            f"codes and webhook attempts each in {took:.0f} s"
        )
        asyncio.run(get_codes(stores, 100))  # warm-up
        asyncio.run(rcpts(stores, 0, 50))
        time.sleep(2.5)  # the route cache forgets every inbox
        results = {
            "GET /code": asyncio.run(get_codes(stores, args.calls)),
            "RCPT TO": asyncio.run(rcpts(stores, 0, args.calls)),
        }

        async def in_this_process() -> dict[str, dict[str, Any]]:
            async with in_process(stores) as gws:
                await sweep_times(gws, 5)  # warm-up
                results["sweeper round"] = await sweep_times(gws, 100)
                return await counted(stores, gws)

        tallies = asyncio.run(in_this_process())
    engine = "PostgreSQL" if args.database_url else "SQLite"
    print(f"load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    for what, by_store in results.items():
        empty, full = by_store["empty"], by_store["full"]
        print(
            f"{what} ({engine}): empty p50 {pct(empty, 0.5):.2f} ms p99 {pct(empty, 0.99):.2f} ms; "
            f"full p50 {pct(full, 0.5):.2f} ms p99 {pct(full, 0.99):.2f} ms; "
            f"ratio (p50) {pct(full, 0.5) / pct(empty, 0.5):.2f}x"
        )
    for what in results:
        line = []
        for name in STORES:
            statements, steps, cpu = tallies[name][what]
            vm = f", {steps:.0f} SQLite VM steps" if engine == "SQLite" else ""
            line.append(f"{name} {statements:.1f} statements{vm}, {cpu:.0f} us CPU")
        print(f"{what} per call: " + "; ".join(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
