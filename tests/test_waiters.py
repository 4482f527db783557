"""What a parked long poll costs the gateway: one task each, and nothing of the database.

Ten thousand agents may wait on one replica at once (``benchmarks/waiters.py``
measures the memory); these tests pin what made each of them dearer than it
needs to be.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.app import FULL_COLLECTION_EVERY, Gateway, settle_heap
from gateway.listeners import GatewayRequestHandler, start_http
from gateway.services.inbound import Message
from gateway.services.waiters import Bells, sleep_on
from gateway.store import presence as presence_rows
from gateway.store.models import CodeWait

from .helpers import ADMIN, bearer, eventually, listening, parked, port_of


def _frames(task: asyncio.Task[Any]) -> list[Any]:
    """The coroutines the task is suspended in, outermost first."""
    found: list[Any] = []
    coro: Any = task.get_coro()
    while coro is not None and getattr(coro, "cr_frame", None) is not None:
        found.append(coro)
        coro = coro.cr_await
    return found


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
        return all("Ticket.sleep" in [c.__qualname__ for c in _frames(p)] for p in polls)

    await eventually(sleeping)
    # asyncio.wait_for (Python 3.11) would run each wait in a task of its own.
    inner = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Ticket.sleep"]
    assert inner == []
    for poll in polls:
        held = [v for c in _frames(poll) for v in c.cr_frame.f_locals.values()]
        assert not [v for v in held if isinstance(v, AsyncConnection | Row)], held
        # One bare future and one timer: no Event.wait coroutine, no asyncio.timeout
        # context, no coroutine around the ticket's own.
        names = [c.__qualname__ for c in _frames(poll)]
        assert names[-1] == "Ticket.sleep" and "sleep_on" not in names, names
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
        return "Ticket.sleep" in serving()

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
        return "Ticket.sleep" in [c.__qualname__ for c in serving()]

    await eventually(sleeping)
    # By code, not coroutine name: the guard wraps (and is named as) the route's handler.
    held = {c.cr_code.co_qualname: list(c.cr_frame.f_locals.values()) for c in serving()}
    assert "guard.<locals>.guarded" in held, list(held)
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
