"""Many agents long-polling one replica: memory per waiter, API latency, arrival-to-agent.

Starts ``otpgate serve`` (SQLite by default, or ``--database-url``), creates
``--credentials`` credentials and measures, with nobody waiting:

- the gateway process's resident memory (``VmRSS``; its ingest worker is a
  separate process, not counted), and
- the API's latency: ``GET /v1/credentials/{id}`` one after another, and
  the garbage collector's pauses during those calls (the gateway runs under
  ``gcprobe.py``): timings are noisy on a shared machine, the collector's
  work is not;

then opens ``--waiters`` long polls (``GET .../code?wait=300``) spread over
the credentials, from a process of their own (not the one that times), waits
until ``/metrics`` shows every one parked, and measures again: memory (the
difference over the number of waiters is the cost of one), the API's latency
and the collector's pauses while they wait, and arrival-to-agent (the final
``.`` of a mail's DATA to a further agent holding the code, as ``latency.py``)
with all of them waiting; then the API's latency once more, idle again, so
that the machine's own noise shows beside the difference the waiters make.

    python benchmarks/waiters.py [--waiters 10000] [--credentials 500] [--database-url ...]

The benchmark raises its open-file limit to the hard limit; the gateway
inherits it (10,000 waiters need 10,000 sockets on each side).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import re
import resource
import time
from collections.abc import Awaitable, Iterator
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
from harness import call, cpu_seconds, gateway, rss_kib
from latency import pct, rounds

WAITING = re.compile(r"^otpgate_code_waiters (\d+)", re.M)


async def api_latency(base: str, key: str, creds: list[dict[str, Any]], n: int) -> list[float]:
    samples = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
        for i in range(n):
            started = time.perf_counter()
            async with http.get(f"{base}/v1/credentials/{creds[i % len(creds)]['id']}") as r:
                await r.read()
                r.raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


async def parked(base: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as r:
        found = WAITING.search(await r.text())
    return int(found.group(1)) if found else 0


async def hold_polls(
    base: str, key: str, cred_ids: list[str], count: int, until: Awaitable[Any]
) -> Any:
    """Open *count* long polls, wait until all are parked, await *until*, then let them go."""
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None)
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as http:

        async def poll(cred_id: str) -> None:
            async with http.get(f"{base}/v1/credentials/{cred_id}/code?wait=300") as r:
                await r.read()

        polls = [asyncio.create_task(poll(cred_ids[i % len(cred_ids)])) for i in range(count)]
        deadline = time.monotonic() + 300
        while (n := await parked(base)) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {n} of {count} long polls parked")
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # settle
        try:
            return await until
        finally:
            for task in polls:
                task.cancel()
            await asyncio.gather(*polls, return_exceptions=True)


def _polls_process(base: str, key: str, cred_ids: list[str], count: int, pipe: Connection) -> None:
    """The long polls in a process of their own: parked, it says so and waits to be told to stop."""

    async def told() -> None:
        pipe.send("parked")
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)

    asyncio.run(hold_polls(base, key, cred_ids, count, told()))


@contextlib.contextmanager
def holding(base: str, key: str, cred_ids: list[str], count: int) -> Iterator[None]:
    """*count* long polls parked for the block, held by another process.

    Not by this one: its event loop and heap would carry 10,000 connections
    while it times the API, and its own pauses would be counted as the
    gateway's.
    """
    here, there = multiprocessing.Pipe()
    spawn = multiprocessing.get_context("spawn")
    proc = spawn.Process(target=_polls_process, args=(base, key, cred_ids, count, there))
    proc.start()
    try:
        if not here.poll(360):
            raise RuntimeError("the long polls did not park")
        here.recv()
        yield
    finally:
        here.send("stop")
        proc.join(60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiters", type=int, default=10_000)
    parser.add_argument("--credentials", type=int, default=500)
    parser.add_argument("--requests", type=int, default=1000, help="API calls timed each time")
    parser.add_argument("--rounds", type=int, default=200, help="mails timed with all waiting")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # Every long poll comes from 127.0.0.1: lift the per-address connection cap.
    env = {
        "OTPGATE_LOG_LEVEL": "warning",
        "OTPGATE_CODE_TTL": "3600",
        "OTPGATE_HTTP_MAX_CONNECTIONS_PER_CLIENT": str(args.waiters + 100),
    }
    with gateway(args.database_url, gc_probe=True, **env) as gw:
        key = gw.tenant_key()
        creds = [
            call(gw.base, "/v1/credentials", {"name": f"c{i}"}, key)
            for i in range(args.credentials)
        ]
        timed = [call(gw.base, "/v1/credentials", {"name": f"t{i}"}, key) for i in range(10)]
        asyncio.run(api_latency(gw.base, key, creds, 200))  # warm-up
        asyncio.run(rounds(gw.base, gw.smtp_port, key, timed, 20))
        gw.gc_pauses()
        cpu = cpu_seconds(gw.pid)
        idle_api = asyncio.run(api_latency(gw.base, key, creds, args.requests))
        idle_cpu = cpu_seconds(gw.pid) - cpu
        idle_gc = gw.gc_pauses()
        idle_rss = rss_kib(gw.pid)

        with holding(gw.base, key, [c["id"] for c in creds], args.waiters):
            holding_rss = rss_kib(gw.pid)
            parking_gc = gw.gc_pauses()
            cpu = cpu_seconds(gw.pid)
            busy_api = asyncio.run(api_latency(gw.base, key, creds, args.requests))
            busy_cpu = cpu_seconds(gw.pid) - cpu
            busy_gc = gw.gc_pauses()
            arrival = asyncio.run(rounds(gw.base, gw.smtp_port, key, timed, args.rounds))
            arrival_gc = gw.gc_pauses()
        # Idle again, once they have gone: the two idle phases show how much of a
        # difference the machine's own noise makes.
        after_api = asyncio.run(api_latency(gw.base, key, creds, args.requests))
        per_waiter = (holding_rss - idle_rss) * 1024 / args.waiters
        engine = "PostgreSQL" if args.database_url else "SQLite"
        ms = [s * 1000 for s in arrival]
        print(
            f"{args.waiters} waiters on {args.credentials} credentials ({engine}): gateway RSS "
            f"{idle_rss / 1024:.0f} MB idle, {holding_rss / 1024:.0f} MB holding them: "
            f"{per_waiter / 1024:.1f} KB per waiter"
        )
        print(
            f"API (GET /v1/credentials/{{id}}, {args.requests} calls): "
            f"p50 {pct(idle_api, 0.5):.2f} ms / p99 {pct(idle_api, 0.99):.2f} ms idle; "
            f"p50 {pct(busy_api, 0.5):.2f} ms / "
            f"p99 {pct(busy_api, 0.99):.2f} ms holding {args.waiters} waiters; "
            f"p50 {pct(after_api, 0.5):.2f} ms / p99 {pct(after_api, 0.99):.2f} ms idle again"
        )
        print(
            f"gateway CPU per API call: {idle_cpu / args.requests * 1000:.2f} ms idle, "
            f"{busy_cpu / args.requests * 1000:.2f} ms holding {args.waiters} waiters"
        )
        phases = (
            ("during the API calls, idle", idle_gc),
            (f"while {args.waiters} long polls parked", parking_gc),
            (f"during the API calls, holding {args.waiters}", busy_gc),
            (f"during the mails, holding {args.waiters}", arrival_gc),
        )
        for phase, pauses in phases:
            print(
                f"garbage collector {phase}: "
                f"{pauses['tracked']['objects']} objects tracked; "
                + "; ".join(
                    f"gen{g} {pauses[g]['count']}x, {pauses[g]['total_ms']:.1f} ms in all, "
                    f"longest {pauses[g]['max_ms']:.2f} ms"
                    for g in ("0", "1", "2")
                )
            )
        print(
            f"arrival-to-agent over {len(ms)} mails with {args.waiters} waiting: "
            f"p50 {pct(ms, 0.50):.2f} ms, p90 {pct(ms, 0.90):.2f} ms, p99 {pct(ms, 0.99):.2f} ms, "
            f"max {max(ms):.2f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
