"""What a parked long poll costs the gateway: one task each, and nothing of the database.

Ten thousand agents may wait on one replica at once (``benchmarks/waiters.py``
measures the memory); these tests pin what made each of them dearer than it
needs to be.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import inspect
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web, web_protocol
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict, MultiDict
from sqlalchemy import func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.app import FULL_COLLECTION_EVERY, Gateway, settle_heap
from gateway.listeners import GatewayRequestHandler, start_http
from gateway.services.inbound import Message
from gateway.services.waiters import Bells, sleep_on
from gateway.store import presence as presence_rows
from gateway.store.models import CodeWait

from .helpers import (
    ADMIN,
    Served,
    bearer,
    eventually,
    listening,
    owner_and_credential,
    parked,
    port_of,
    served_on_loopback,
)


def _frames(task: asyncio.Task[Any]) -> list[Any]:
    """The coroutines the task is suspended in, outermost first."""
    found: list[Any] = []
    coro: Any = task.get_coro()
    while coro is not None and getattr(coro, "cr_frame", None) is not None:
        found.append(coro)
        coro = coro.cr_await
    return found


def _napping(task: asyncio.Task[Any]) -> bool:
    """The task waits in the code service's own frame on a bare future (a ticket's nap;
    what it awaits is the future's iterator), not in a coroutine of the ticket's."""
    frames = _frames(task)
    if not frames or frames[-1].__qualname__ != "CodeService._look":
        return False
    return type(frames[-1].cr_await).__name__ == "FutureIter"


async def test_a_parked_long_poll_adds_one_task_and_keeps_no_database_objects(
    gateway: Gateway,
) -> None:
    """Parked requests run no inner task per wait and hold no connection or row while parked."""
    services = gateway.services
    tenant = await services.tenants.create("acme")
    cred = await services.credentials.create(tenant.id, name="c", username=None, password=None)
    polls = [
        asyncio.create_task(services.codes.code(tenant.id, cred.id, wait=30)) for _ in range(10)
    ]
    await parked(gateway, cred.id, count=10)

    async def sleeping() -> bool:  # past the look and the presence write
        return all(_napping(p) for p in polls)

    await eventually(sleeping)
    # asyncio.wait_for (Python 3.11) would run each wait in a task of its own.
    assert len(asyncio.all_tasks()) == 1 + len(polls)
    for poll in polls:
        held = [v for c in _frames(poll) for v in c.cr_frame.f_locals.values()]
        assert not [v for v in held if isinstance(v, AsyncConnection | Row)], held
        # One bare future and one timer, awaited by the code service's own frame: no
        # Event.wait coroutine, no asyncio.timeout context, no coroutine of the ticket's.
        names = [c.__qualname__ for c in _frames(poll)]
        assert names == ["CodeService._look"], names
        assert not [v for v in held if isinstance(v, asyncio.Timeout | asyncio.Event)], held
    gateway.bells.ring(cred.id)  # nothing stored: they look, and park again
    for poll in polls:
        poll.cancel()
    await asyncio.gather(*polls, return_exceptions=True)


async def test_sleep_on_returns_when_rung_or_when_its_time_is_up() -> None:
    """``sleep_on`` wakes on the bell, and otherwise after its timeout, without raising."""
    bells = Bells()
    with bells.waiting("k"):
        ticket = bells.ticket("k")
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, bells.ring, "k")
        await asyncio.wait_for(sleep_on(ticket, 30), 5)
        assert ticket.is_set()
        started = loop.time()
        await sleep_on(bells.ticket("k"), 0.05)
        assert loop.time() - started >= 0.05
    assert bells.waiters("k") == 0 and bells.total() == 0


async def _recorded_waits(gateway: Gateway) -> int:
    async with gateway.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(CodeWait))).scalar_one())


async def test_waits_on_one_credential_share_one_record_until_the_last_ends(
    gateway: Gateway,
) -> None:
    """Ten parked requests on a credential write one presence record; it goes with the last."""
    services = gateway.services
    tenant = await services.tenants.create("acme")
    cred = await services.credentials.create(tenant.id, name="c", username=None, password=None)
    polls = [
        asyncio.create_task(services.codes.code(tenant.id, cred.id, wait=30)) for _ in range(10)
    ]
    await parked(gateway, cred.id, count=10)

    async def recorded() -> bool:
        return services.codes.waits.records() == 1 and await _recorded_waits(gateway) == 1

    await eventually(recorded)
    for poll in polls[:9]:
        poll.cancel()
    await asyncio.gather(*polls[:9], return_exceptions=True)
    assert await _recorded_waits(gateway) == 1  # one agent still waits
    polls[9].cancel()
    await asyncio.gather(polls[9], return_exceptions=True)
    assert await _recorded_waits(gateway) == 0
    assert services.codes.waits.records() == 0


async def test_a_parked_request_keeps_no_frame_of_the_body_deadline(
    client: TestClient[Any, Any], gateway: Gateway
) -> None:
    """A long poll has no body: the body-deadline middleware hands it on and is gone."""
    tenant = await client.post("/v1/tenants", json={"name": "acme"}, headers=ADMIN)
    owner = bearer((await tenant.json())["api_key"])
    cred = await (await client.post("/v1/credentials", json={"name": "c"}, headers=owner)).json()
    poll = asyncio.create_task(
        client.get(f"/v1/credentials/{cred['id']}/code", params={"wait": "30"}, headers=owner)
    )
    await parked(gateway, cred["id"])

    def serving() -> list[str]:
        for task in asyncio.all_tasks():
            names = [c.__qualname__ for c in _frames(task)]
            if "get_code" in names:
                return names
        return []

    async def sleeping() -> bool:
        return any(_napping(t) for t in asyncio.all_tasks() if "get_code" in _names(t))

    await eventually(sleeping)
    names = serving()
    assert "error_middleware" in names  # the chain is there, without the deadline's frame
    assert not [n for n in names if "body_deadline" in n or "_with_deadline" in n], names
    poll.cancel()
    await asyncio.gather(poll, return_exceptions=True)


async def test_a_parked_request_keeps_no_copy_of_the_api_key(
    client: TestClient[Any, Any], gateway: Gateway
) -> None:
    """Once the key is checked, no frame of a parked long poll keeps a copy of it."""
    tenant = await client.post("/v1/tenants", json={"name": "acme"}, headers=ADMIN)
    key = (await tenant.json())["api_key"]
    owner = bearer(key)
    cred = await (await client.post("/v1/credentials", json={"name": "c"}, headers=owner)).json()
    poll = asyncio.create_task(
        client.get(f"/v1/credentials/{cred['id']}/code", params={"wait": "30"}, headers=owner)
    )
    await parked(gateway, cred["id"])

    def serving() -> list[Any]:
        for task in asyncio.all_tasks():
            frames = _frames(task)
            if "get_code" in [c.__qualname__ for c in frames]:
                return frames
        return []

    async def sleeping() -> bool:
        return any(_napping(t) for t in asyncio.all_tasks() if "get_code" in _names(t))

    await eventually(sleeping)
    held = {c.cr_code.co_qualname: list(c.cr_frame.f_locals.values()) for c in serving()}
    # The key was checked before the handler ran, in a frame that is gone (``authorize``).
    assert "get_code" in held and not [name for name in held if "guard" in name], list(held)
    assert not [name for name, values in held.items() if key in values], list(held)
    poll.cancel()
    await asyncio.gather(poll, return_exceptions=True)


def test_the_connection_protocol_carries_no_instance_dict() -> None:
    """aiohttp's protocol is slotted; a subclass without slots would add a dict per connection."""
    assert GatewayRequestHandler.__dictoffset__ == 0


async def test_pipelined_requests_are_answered_in_order_from_a_small_queue() -> None:
    """Requests sent back to back on one connection are answered in order, and the queue they
    wait in costs a connection tens of bytes, not a deque's 760."""
    queue_sizes: list[int] = []

    async def echo(request: web.Request) -> web.Response:
        if request.match_info["n"] == "1":
            await asyncio.sleep(0.05)  # the others arrive and queue meanwhile
        queue_sizes.append(sys.getsizeof(request.protocol._messages))
        return web.Response(text=request.match_info["n"])

    app = web.Application()
    app.router.add_get("/n/{n}", echo)
    sock = listening()
    runner = await start_http(app, sock)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(sock))
        writer.write(
            b"".join(f"GET /n/{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for n in (1, 2, 3))
            + b"GET /n/4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    finally:
        await runner.cleanup()
    answers = answer.split(b"HTTP/1.1 ")[1:]
    assert [a.startswith(b"200 ") for a in answers] == [True] * 4, answer
    assert [a.partition(b"\r\n\r\n")[2] for a in answers] == [b"1", b"2", b"3", b"4"]
    assert max(queue_sizes) < 200, queue_sizes


async def test_an_agent_gets_its_code_without_waiting_for_the_presence_record_to_go(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last wait on a credential removes its presence record after the answer, not before."""
    services = gateway.services
    tenant = await services.tenants.create("acme")
    cred = await services.credentials.create(tenant.id, name="c", username=None, password=None)
    release = asyncio.Event()
    end_wait = presence_rows.end_wait

    async def slow_end_wait(conn: Any, record_id: str) -> None:
        await release.wait()
        await end_wait(conn, record_id)

    monkeypatch.setattr(presence_rows, "end_wait", slow_end_wait)
    poll = asyncio.create_task(services.codes.code(tenant.id, cred.id, wait=30))
    await parked(gateway, cred.id)
    await eventually(lambda: _recorded_waits_are(gateway, 1))
    route = await services.inbound.route_for_inbox(cred.inbox.partition("@")[0])
    assert route is not None
    message = Message(
        channel="email",
        sender="no-reply@service.example",
        sender_domain="service.example",
        subject="Your code",
        text="Your verification code is 482913.",
    )
    await services.inbound.accept(message, [route])
    code = await asyncio.wait_for(poll, 10)  # while the record's removal is held
    assert code is not None and code.code == "482913"
    assert services.codes.waits.records() == 0
    release.set()
    await services.codes.waits.settle()
    assert await _recorded_waits(gateway) == 0


async def _recorded_waits_are(gateway: Gateway, count: int) -> bool:
    return await _recorded_waits(gateway) == count


def test_serving_freezes_what_start_up_built_and_makes_full_collections_rarer() -> None:
    """After ``settle_heap`` (``serve`` calls it once started) the objects built so far are out
    of the collector's passes, and a full pass waits for 100 younger ones, not 10."""
    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_freeze_count() > 1000
        assert gc.get_threshold() == (before[0], before[1], FULL_COLLECTION_EVERY)
        assert before[2] < FULL_COLLECTION_EVERY
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One answer read off a kept-alive connection: its status and body (``Content-Length``)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return int(lines[0].split()[1]), await reader.readexactly(length)


def _request(method: str, path: str, key: str, body: bytes = b"") -> bytes:
    typed = b"Content-Type: application/json\r\n" if body else b""
    return (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n".encode()
        + typed
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


async def _owner_and_credential(served: Served) -> tuple[str, str]:
    async with aiohttp.ClientSession(served.url) as http:
        key, cred = await owner_and_credential(http)
    return key, str(cred["id"])


async def test_requests_in_pieces_and_back_to_back_on_one_connection(tmp_path: Path) -> None:
    """A connection's parser goes between requests and a new one reads the next: a request
    sent byte by byte, a head and its body apart, requests back to back, and a request begun
    while a long poll waits are all read whole and answered in order."""
    async with served_on_loopback(tmp_path) as served:
        key, cred = await _owner_and_credential(served)
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        try:
            writer.write(_request("GET", "/healthz", key))
            assert (await _answer(reader))[0] == 200
            for byte in _request("POST", "/v1/credentials", key, b'{"name": "byte"}'):
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0)
            assert (await _answer(reader))[0] == 201
            head, _, body = _request(
                "POST", "/v1/credentials", key, b'{"name": "apart"}'
            ).partition(b"\r\n\r\n")
            writer.write(head + b"\r\n\r\n")
            await asyncio.sleep(0.1)
            writer.write(body)
            assert (await _answer(reader))[0] == 201
            writer.write(
                _request("GET", "/healthz", key)
                + _request("POST", "/v1/credentials", key, b'{"name": "piped"}')
                + _request("GET", "/v1/credentials", key)
            )
            answers = [await _answer(reader) for _ in range(3)]
            assert [status for status, _ in answers] == [200, 201, 200]
            names = {c["name"] for c in json.loads(answers[2][1])["credentials"]}
            assert {"byte", "apart", "piped"} <= names
            # A long poll, and the next request begun while it waits.
            writer.write(_request("GET", f"/v1/credentials/{cred}/code?wait=1", key))
            await parked(served.gateway, cred)
            following = _request("GET", "/v1/credentials", key)
            writer.write(following[:20])
            await asyncio.sleep(0.1)
            writer.write(following[20:])
            assert (await _answer(reader))[0] == 204
            assert (await _answer(reader))[0] == 200
        finally:
            writer.close()


def _holding(key: str) -> list[Any]:
    """Every list, tuple, dict or multidict that holds *key* in a string or bytes value."""
    raw = key.encode()

    def has(value: Any) -> bool:
        return (isinstance(value, str) and key in value) or (
            isinstance(value, bytes) and raw in value
        )

    found = []
    for obj in gc.get_objects():
        if isinstance(obj, (list, tuple)):
            values: Any = obj
        elif isinstance(obj, (dict, MultiDict, CIMultiDict)):
            values = obj.values()
        else:
            continue
        if any(has(v) or (isinstance(v, tuple) and any(has(x) for x in v)) for v in values):
            found.append(obj)
    return found


async def test_an_answered_connection_keeps_no_copy_of_the_api_key(tmp_path: Path) -> None:
    """Once a request is answered, the connection it came on, still open for the next, holds
    nothing of its headers: aiohttp's parser kept the last request's until another came."""
    async with served_on_loopback(tmp_path) as served:
        key, _ = await _owner_and_credential(served)
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        try:
            writer.write(_request("GET", "/v1/credentials", key))
            assert (await _answer(reader))[0] == 200
            await asyncio.sleep(0.05)
            gc.collect()
            assert _holding(key) == []
            writer.write(_request("GET", "/v1/credentials", key))  # and the connection serves on
            assert (await _answer(reader))[0] == 200
        finally:
            writer.close()


async def test_a_parked_long_poll_runs_in_its_connection_s_task_and_keeps_no_headers(
    tmp_path: Path,
) -> None:
    """Each long poll parked over HTTP adds one task, its connection's (aiohttp would run each
    request in a second task), and keeps nothing of its headers, the API key among them."""
    async with served_on_loopback(tmp_path) as served:
        key, cred = await _owner_and_credential(served)
        before = len(asyncio.all_tasks())
        connections = [await asyncio.open_connection("127.0.0.1", served.port) for _ in range(20)]
        try:
            for _, writer in connections:
                writer.write(_request("GET", f"/v1/credentials/{cred}/code?wait=30", key))
            await parked(served.gateway, cred, count=20)
            serving = [t for t in asyncio.all_tasks() if "get_code" in _names(t)]
            assert len(serving) == 20
            assert {_names(t)[0] for t in serving} == {"GatewayRequestHandler.start"}
            assert not [t for t in asyncio.all_tasks() if "_handle_request" in _names(t)[0]]
            assert len(asyncio.all_tasks()) <= before + 20
            gc.collect()
            assert _holding(key) == []
        finally:
            for _, writer in connections:
                writer.close()


def _names(task: asyncio.Task[Any]) -> list[str]:
    return [c.__qualname__ for c in _frames(task)]


def test_the_copied_request_loop_is_aiohttp_s_current_one() -> None:
    """``GatewayRequestHandler.start`` is aiohttp's ``start`` and ``_handle_request`` merged
    (one coroutine per connection): an aiohttp whose versions of them differ from those the
    copy was made from fails here, so that the copy is reviewed against them."""
    copied_from = {
        "RequestHandler.start": "2e565fd40c8e04fb",
        "RequestHandler._handle_request": "a88a34ee65a2714c",
    }
    now = {
        f.__qualname__: hashlib.sha256(inspect.getsource(f).encode()).hexdigest()[:16]
        for f in (web_protocol.RequestHandler.start, web_protocol.RequestHandler._handle_request)
    }
    assert now == copied_from, f"aiohttp {aiohttp.__version__} changed its request loop"
