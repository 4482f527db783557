"""Slow and greedy HTTP clients: headers and bodies that drip, huge announced bodies, too many
connections from one address, and aiohttp's own refusals, against the real listener."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path

import aiohttp

from gateway.listeners import MAX_REQUEST_LINE

from .helpers import ADMIN, Served, assert_raw_error, raw_http, served_on_loopback


async def _tenant_key(served: Served) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{served.url}/v1/tenants", json={"name": "t"}, headers=ADMIN) as resp,
    ):
        key: str = (await resp.json())["api_key"]
        return key


async def _drip(port: int, source: str, first: bytes, every: float) -> float:
    """Open a connection from *source*, send *first*, then one byte every *every* seconds until
    the server hangs up; the seconds it took."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(first)
        while True:
            try:
                got = await asyncio.wait_for(reader.read(65536), every)
            except TimeoutError:
                writer.write(b"x")
                continue
            if not got:
                return time.monotonic() - started
    except OSError:
        return time.monotonic() - started
    finally:
        writer.close()


async def test_aiohttp_own_refusals_are_the_json_error(tmp_path: Path) -> None:
    """A request line over the gateway's limit (32 KiB: a Twilio GET webhook carries its text)
    or a header over aiohttp's 8 KiB gets the contract's JSON error."""
    async with served_on_loopback(tmp_path) as served:
        port = served.port
        over = b"x" * (MAX_REQUEST_LINE + 10)
        long_line = await raw_http(port, b"GET /" + over + b" HTTP/1.1\r\nHost: x")
        assert_raw_error(long_line, 400, "bad_input")
        big_header = await raw_http(
            port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"x" * 9000
        )
        assert_raw_error(big_header, 400, "bad_input")


async def test_huge_announced_body_is_refused_at_once(tmp_path: Path) -> None:
    """A Content-Length larger than any route takes is a 413 before any of it arrives, with a
    key or without one (the key is not even checked)."""
    async with served_on_loopback(tmp_path) as served:
        key = await _tenant_key(served)
        for length, auth in ((10**12, True), (10**7, True), (10**6, True), (10**12, False)):
            started = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(
                b"POST /v1/credentials HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + (b"Authorization: Bearer " + key.encode() + b"\r\n" if auth else b"")
                + b"Content-Length: "
                + str(length).encode()
                + b"\r\n\r\n{"
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.close()
            assert head.startswith(b"HTTP/1.1 413 "), head
            assert time.monotonic() - started < 2


async def test_dripping_headers_and_bodies_are_cut_off(tmp_path: Path) -> None:
    """Headers that never end are cut off after the header timeout; a body that drips gets 408
    after the body timeout, with the connection closed."""
    async with served_on_loopback(
        tmp_path, OTPGATE_HTTP_HEADER_TIMEOUT="1", OTPGATE_HTTP_BODY_TIMEOUT="1"
    ) as served:
        port = served.port
        key = await _tenant_key(served)
        slow_head = _drip(port, "127.0.0.1", b"GET /healthz HTTP/1.1\r\nX-Slow: ", 0.2)
        took = await asyncio.wait_for(slow_head, 10)
        assert 0.8 < took < 3
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        writer.write(
            b"POST /v1/credentials HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + key.encode() + b"\r\nContent-Length: 1000\r\n\r\n{"
        )
        answer = b""
        while chunk := await asyncio.wait_for(reader.read(65536), 5):
            answer += chunk
            if not writer.is_closing():
                writer.write(b" ")
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "timeout"
        assert 0.8 < time.monotonic() - started < 4


async def test_connections_per_client_address_are_capped(tmp_path: Path) -> None:
    """One address gets its share of connections, the next a 429; other addresses still get in."""
    async with served_on_loopback(tmp_path, OTPGATE_HTTP_MAX_CONNECTIONS_PER_CLIENT="5") as served:
        port = served.port
        held = [
            await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.3", 0))
            for _ in range(5)
        ]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, local_addr=("127.0.0.3", 0)
        )
        refused = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert refused.startswith(b"HTTP/1.1 429 ") and b"Retry-After: 1" in refused
        answer = await raw_http(port, b"GET /healthz HTTP/1.1\r\nHost: x")
        assert answer.status == 200
        for _, w in held:
            w.close()


async def _latencies(url: str, key: str, count: int) -> list[float]:
    times = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
        for _ in range(count):
            started = time.perf_counter()
            async with http.get(f"{url}/v1/credentials") as resp:
                assert resp.status == 200
                await resp.read()
            times.append(time.perf_counter() - started)
    return times


def _p(times: list[float], q: int) -> float:
    return statistics.quantiles(times, n=100)[q - 1] * 1000


async def test_api_answers_while_400_slow_clients_drip(tmp_path: Path) -> None:
    """400 connections dripping headers or bodies from eight addresses leave the API's latency
    about as it was, and every one of them is closed by the server within its timeout."""
    async with served_on_loopback(
        tmp_path, OTPGATE_HTTP_HEADER_TIMEOUT="3", OTPGATE_HTTP_BODY_TIMEOUT="3"
    ) as served:
        port = served.port
        key = await _tenant_key(served)
        await _latencies(served.url, key, 20)  # warm up
        calm = await _latencies(served.url, key, 300)
        slow_head = b"GET /v1/credentials HTTP/1.1\r\nHost: x\r\nX-Slow: "
        slow_body = (
            b"POST /v1/credentials HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + key.encode() + b"\r\nContent-Length: 1000\r\n\r\n{"
        )
        drippers = [
            asyncio.create_task(
                _drip(port, f"127.0.0.{2 + i % 8}", slow_head if i % 2 else slow_body, 0.5)
            )
            for i in range(400)
        ]
        await asyncio.sleep(0.5)
        busy = await _latencies(served.url, key, 300)
        closed_after = await asyncio.wait_for(asyncio.gather(*drippers), 20)
        print(
            f"\nGET /v1/credentials, 300 calls: calm p50 {_p(calm, 50):.2f} ms "
            f"p99 {_p(calm, 99):.2f} ms; with 400 slow clients p50 {_p(busy, 50):.2f} ms "
            f"p99 {_p(busy, 99):.2f} ms; slow clients closed after "
            f"{min(closed_after):.1f} to {max(closed_after):.1f} s"
        )
        assert _p(busy, 50) < max(5 * _p(calm, 50), 50)
        assert _p(busy, 99) < max(10 * _p(calm, 99), 250)
        assert max(closed_after) < 3 + 2
