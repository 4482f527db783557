"""Several replicas on one PostgreSQL database behave as one gateway.

In-process pairs (two gateways sharing the database and the key ring) pin the
wake-up mechanics; real ``otpgate serve`` processes pin the behaviour users
rely on: a mail taken by one replica wakes an agent waiting on another,
no code is handed out twice among 20 concurrent agents, and ``kill -9`` of
a replica in a burst of mail loses nothing it acknowledged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
import smtplib
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from gateway.app import Gateway, Tuning
from gateway.services.inbound import Message
from gateway.store import forwards as forwards_store

from .helpers import (
    ADMIN,
    Looks,
    Relay,
    Server,
    eventually,
    make_settings,
    opened,
    otp_mail,
    parked,
    replica_pair,
    reset_postgres,
    serve_env,
)

Client = TestClient[Any, Any]


@pytest.fixture
def pg_url(postgres_database: str) -> str:
    """A fresh PostgreSQL database (replicas share one; SQLite is one process)."""
    asyncio.run(reset_postgres(postgres_database))
    return postgres_database


@pytest.fixture
async def pair(tmp_path: Path, pg_url: str) -> AsyncIterator[tuple[Gateway, Gateway]]:
    """Two gateways on one database and one key ring, each with its workers running."""
    # (A relay makes email forwarding rules valid; no test here queues a copy to send.)
    async with replica_pair(tmp_path, pg_url, OTPGATE_SMTP_RELAY="smtp://127.0.0.1:9") as pair:
        yield pair


async def _credential(gw: Gateway) -> tuple[str, str]:
    tenant = await gw.services.tenants.create("acme")
    cred = await gw.services.credentials.create(tenant.id, name="c", username=None, password=None)
    return tenant.id, cred.id


async def _deliver(gw: Gateway, cred_inbox: str, code: str) -> None:
    route = await gw.services.inbound.route_for_inbox(cred_inbox)
    assert route is not None
    message = Message(
        channel="email",
        sender="no-reply@service.example",
        sender_domain="service.example",
        subject="Your code",
        text=f"Your verification code is {code}.",
    )
    await gw.services.inbound.accept(message, [route])


async def test_a_commit_on_one_replica_wakes_a_waiter_on_another(
    pair: tuple[Gateway, Gateway],
) -> None:
    """An agent long-polling replica B gets a code replica A stored, long before its wait ends."""
    a, b = pair
    tenant_id, cred_id = await _credential(a)
    info = await a.services.credentials.get(tenant_id, cred_id)
    waiting = asyncio.create_task(b.services.codes.code(tenant_id, cred_id, wait=30))
    await parked(b, cred_id)
    started = time.monotonic()
    await _deliver(a, info.inbox.partition("@")[0], "481516")
    code = await asyncio.wait_for(waiting, 30)
    assert code is not None and code.code == "481516"
    # Without the cross-replica wake-up B would look again only when its 30 s ran out.
    assert time.monotonic() - started < 10


async def test_a_route_changed_on_one_replica_is_not_used_from_another_cache(
    pair: tuple[Gateway, Gateway],
) -> None:
    """A number moved to another credential, a rule added, a credential deleted on replica A:
    replica B, which had the routes cached, routes the next text by the new state at once."""
    a, b = pair
    tenant_id, first = await _credential(a)
    second = (
        await a.services.credentials.create(tenant_id, name="d", username=None, password=None)
    ).id
    number = "+14155550170"
    await a.services.credentials.set_phone(tenant_id, first, number)

    async def route_on_b() -> Any:
        return await b.services.inbound.route_for_phone(number)

    assert (await route_on_b()).credential_id == first  # cached on B now
    await a.services.credentials.set_phone(tenant_id, first, None)
    await a.services.credentials.set_phone(tenant_id, second, number)
    await eventually(lambda: _is(route_on_b(), second), within=1.0)
    rule = await a.services.forward_rules.create(
        tenant_id, second, channel="email", to="o@example.com"
    )
    await eventually(lambda: _has_rule(route_on_b(), rule.id), within=1.0)
    await a.services.credentials.delete(tenant_id, second)
    await eventually(lambda: _is(route_on_b(), None), within=1.0)


async def _is(route: Any, cred_id: str | None) -> bool:
    found = await route
    return (found.credential_id if found else None) == cred_id


async def _has_rule(route: Any, rule_id: str) -> bool:
    found = await route
    return found is not None and rule_id in found.forwards


async def test_a_lost_listening_connection_is_reopened_and_waiters_look_again(
    pair: tuple[Gateway, Gateway], pg_url: str
) -> None:
    """When B's listening connection dies, B reconnects and its waiters see what came meanwhile."""
    a, b = pair
    assert b.listener is not None
    tenant_id, cred_id = await _credential(a)
    inbox = (await a.services.credentials.get(tenant_id, cred_id)).inbox.partition("@")[0]
    waiting = asyncio.create_task(b.services.codes.code(tenant_id, cred_id, wait=30))
    await parked(b, cred_id)
    before = b.listener.connections
    admin = await asyncpg.connect(pg_url)
    try:
        # Kill every listening backend (both replicas'), then commit while nobody listens.
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    await _deliver(a, inbox, "232323")
    code = await asyncio.wait_for(waiting, 30)
    assert code is not None and code.code == "232323"
    assert b.listener.connections > before


async def test_an_answer_given_on_one_replica_wakes_the_interaction_waiter_on_another(
    pair: tuple[Gateway, Gateway],
) -> None:
    """A person's answer submitted through replica A reaches the agent waiting on replica B."""
    a, b = pair
    tenant_id, cred_id = await _credential(a)
    interaction = await a.services.interactions.create(tenant_id, cred_id)
    waiting = asyncio.create_task(b.services.interactions.take(tenant_id, interaction.id, wait=30))
    await parked(b, interaction.id)
    started = time.monotonic()
    await a.services.interactions.submit(tenant_id, interaction.id, "774411")
    code = await asyncio.wait_for(waiting, 30)
    assert code is not None and code.code == "774411"
    assert time.monotonic() - started < 10


# -- real processes ------------------------------------------------------------------


def _replica_env(tmp_path: Path, pg_url: str) -> dict[str, str]:
    return serve_env(
        tmp_path / "shared",  # one key ring for both
        OTPGATE_DATABASE_URL=pg_url,
        OTPGATE_ADMIN_KEY="test-admin-key-0123456789abcdef",
        OTPGATE_LOG_LEVEL="warning",
    )


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str) -> Any:
    started: list[Server] = []

    def start(name: str) -> Server:
        work = tmp_path / name
        work.mkdir()
        server = Server(_replica_env(tmp_path, pg_url), work).start()
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()


def _tenant_and_credentials(server: Server, n: int) -> tuple[str, list[dict[str, Any]]]:
    status, tenant = server.call(
        "POST", "/v1/tenants", {"name": "acme"}, ADMIN["Authorization"][7:]
    )
    assert status == 201
    key = tenant["api_key"]
    creds = []
    for i in range(n):
        status, cred = server.call("POST", "/v1/credentials", {"name": f"svc{i}"}, key)
        assert status == 201
        creds.append(cred)
    return key, creds


def _smtp_port(server: Server) -> int:
    return int(server.env["OTPGATE_SMTP"].rpartition(":")[2])


def test_twenty_agents_on_two_replicas_each_code_once(replicas: Any) -> None:
    """20 agents long-polling both replicas: each mailed code goes to exactly one of them."""
    a, b = replicas("a"), replicas("b")
    key, (cred,) = _tenant_and_credentials(a, 1)
    sent = [f"{600000 + i}" for i in range(10)]
    got: list[str] = []
    lock = threading.Lock()
    done = threading.Event()

    def agent(n: int) -> None:
        server = (a, b)[n % 2]
        while not done.is_set():
            status, body = server.call(
                "GET", f"/v1/credentials/{cred['id']}/code?wait=3", None, key
            )
            if status == 200:
                with lock:
                    got.append(body["code"])
                    if len(got) >= len(sent):
                        done.set()

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        agents = [pool.submit(agent, n) for n in range(20)]
        time.sleep(0.5)  # the agents' requests reach the other processes (they show no waiters)
        for code in sent:
            # One at a time, each to replica A, so every code is the newest when taken.
            with smtplib.SMTP("127.0.0.1", _smtp_port(a), timeout=10) as smtp:
                smtp.sendmail(
                    "no-reply@service.example", [cred["inbox"]], otp_mail(code).as_bytes()
                )
            deadline = time.monotonic() + 15
            while code not in got and time.monotonic() < deadline:
                time.sleep(0.01)
        done.set()
        for f in agents:
            f.result(timeout=30)
    assert sorted(got) == sorted(sent)  # every code once, none twice


def test_kill_9_during_a_burst_loses_nothing_acknowledged(replicas: Any) -> None:
    """Replica A is killed mid-burst; every mail it answered 250 has its code on replica B."""
    a, b = replicas("a"), replicas("b")
    key, creds = _tenant_and_credentials(b, 40)
    acked: list[int] = []
    stop = threading.Event()

    def burst() -> None:
        for i, cred in enumerate(creds):
            if stop.is_set():
                return
            try:
                with smtplib.SMTP("127.0.0.1", _smtp_port(a), timeout=10) as smtp:
                    smtp.sendmail(
                        "no-reply@service.example",
                        [cred["inbox"]],
                        otp_mail(f"{700000 + i}").as_bytes(),
                    )
                acked.append(i)
            except (OSError, smtplib.SMTPException):
                return

    sender = threading.Thread(target=burst)
    sender.start()
    deadline = time.monotonic() + 30
    while len(acked) < 10 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert a.proc is not None
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(timeout=10)
    stop.set()
    sender.join(timeout=30)
    assert len(acked) >= 10
    for i in acked:
        status, body = b.call("GET", f"/v1/credentials/{creds[i]['id']}/code", None, key)
        assert status == 200, (i, status)
        assert body["code"] == f"{700000 + i}"


async def test_two_replicas_send_each_forwarded_copy_once(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both replicas' forward senders share one outbox: every copy reaches the relay once."""
    looks = Looks(monkeypatch, forwards_store, "any_due")
    relay = Relay()
    await relay.start()
    env = {"OTPGATE_SMTP_RELAY": f"smtp://127.0.0.1:{relay.port}"}
    try:
        fast = Tuning(outbox_poll=0.01)
        async with (
            opened(make_settings(tmp_path, pg_url, **env), tuning=fast) as a,
            opened(make_settings(tmp_path, pg_url, **env), tuning=fast) as b,
        ):
            tenant_id, cred_id = await _credential(a)
            await a.services.forward_rules.create(
                tenant_id, cred_id, channel="email", to="p@example.com"
            )
            inbox = (await a.services.credentials.get(tenant_id, cred_id)).inbox.partition("@")[0]
            for i in range(12):
                await _deliver(a, inbox, f"{300000 + i}")
            async with a.background(), b.background():
                await eventually(lambda: _at_least(relay, 12), within=30)
                await looks.again(runners=2)  # both senders looked again: a second copy would show
    finally:
        await relay.stop()
    ids = [raw.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0] for _, _, raw in relay.mails]
    assert len(ids) == 12 and len(set(ids)) == 12


async def _at_least(relay: Any, n: int) -> bool:
    return len(relay.mails) >= n
