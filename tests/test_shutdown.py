"""Graceful shutdown: SIGTERM drains the gateway without losing anything it acknowledged."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import Gateway

from .helpers import ADMIN_KEY, Server, parked, serve_env

Client = TestClient[Any, Any]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(serve_env(tmp_path / "data", OTPGATE_ADMIN_KEY=ADMIN_KEY), tmp_path)
    yield srv
    srv.kill()


def _read_reply(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_sigterm_answers_waiting_agents_204_and_idle_smtp_sessions_421(server: Server) -> None:
    """On SIGTERM a long-polling agent gets 204 at once, an idle SMTP session 421, exit 0."""
    server.start()
    status, tenant = server.call("POST", "/v1/tenants", {"name": "acme"}, ADMIN_KEY)
    key = tenant["api_key"]
    status, cred = server.call("POST", "/v1/credentials", {"name": "svc"}, key)
    assert status == 201
    answer: dict[str, Any] = {}

    def agent() -> None:
        started = time.monotonic()
        answer["status"], _ = server.call(
            "GET", f"/v1/credentials/{cred['id']}/code?wait=120", None, key
        )
        answer["seconds"] = time.monotonic() - started

    waiting = threading.Thread(target=agent)
    waiting.start()
    smtp = socket.create_connection(("127.0.0.1", int(server.env["OTPGATE_SMTP"].rsplit(":")[1])))
    smtp.settimeout(20)
    assert _read_reply(smtp).startswith(b"220")
    smtp.sendall(b"EHLO client.example\r\n")
    while b"250 " not in _read_reply(smtp):
        pass
    time.sleep(0.3)  # the agent's request reaches the other process (it shows no waiters)
    code, _out, err = server.stop(signal.SIGTERM)
    waiting.join(timeout=20)
    assert code == 0, err
    assert answer["status"] == 204
    assert answer["seconds"] < 15  # not the 120 s it asked to wait
    assert _read_reply(smtp).startswith(b"421")
    smtp.close()


async def test_draining_turns_readyz_503_and_ends_waits(
    gateway: Gateway, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """While draining, /readyz answers 503 and a waiting agent's request ends with 204."""
    api = await aiohttp_client(gateway.app)
    tenant = await gateway.services.tenants.create("acme")
    cred = await gateway.services.credentials.create(
        tenant.id, name="c", username=None, password=None
    )
    assert (await api.get("/readyz")).status == 200
    waiting = asyncio.create_task(gateway.services.codes.code(tenant.id, cred.id, wait=60))
    await parked(gateway, cred.id)
    gateway.drain()
    assert await asyncio.wait_for(waiting, 5) is None
    resp = await api.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["status"] == "draining"
