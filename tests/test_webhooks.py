"""Webhook endpoints and their deliveries, against real receivers on loopback.

Signatures are checked with the ``standardwebhooks`` package (the reference
implementation of the Standard Webhooks specification), never with our own
code.  Each test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update
from sqlmodel import col
from standardwebhooks.webhooks import Webhook

from gateway.app import Gateway, Tuning
from gateway.logs import JsonFormatter, TextFormatter
from gateway.services import keys, webhook_delivery
from gateway.services.outbox import Outbox
from gateway.services.webhook_delivery import MAX_ATTEMPTS, LeasedDelivery
from gateway.services.webhooks import MAX_WEBHOOKS, ROTATION_OVERLAP
from gateway.settings import Settings
from gateway.store import webhooks as wq
from gateway.store.models import WebhookDelivery
from gateway.vault import Vault

from .helpers import (
    ADMIN,
    Looks,
    Receiver,
    bearer,
    eventually,
    make_settings,
    opened,
    port_of,
    reserved,
    verifies,
)

Client = TestClient[Any, Any]

#: Retry waits for tests: the real schedule starts at seconds and grows to an hour.
FAST = (0.05, 0.1, 0.2)


class Clock:
    """The wall clock moved by ``offset`` seconds."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@contextlib.asynccontextmanager
async def running(*services: Outbox[LeasedDelivery]) -> AsyncIterator[None]:
    """Run the delivery workers for the block's duration."""
    tasks = [asyncio.create_task(s.run()) for s in services]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def service_for(
    gateway: Gateway, clock: Callable[[], float], **options: Any
) -> Outbox[LeasedDelivery]:
    """A worker on the gateway's database with test timings (and loopback allowed)."""
    settings: dict[str, Any] = {"timeout": 5.0, "retry_delays": FAST}
    settings.update(options)
    sender = webhook_delivery.WebhookDelivery(
        gateway.db,
        Vault(gateway.keyring),
        allow_private=True,
        public_url=gateway.settings.public_url,
        clock=clock,
        **settings,
    )
    return Outbox(sender, poll=0.05)


@dataclasses.dataclass
class Hooks:
    """A gateway allowing loopback targets, its API, a worker and one tenant."""

    gateway: Gateway
    client: Client
    service: Outbox[LeasedDelivery]
    clock: Clock
    tenant_id: str
    headers: dict[str, str]

    async def register(
        self, url: str, events: Iterable[str] = ("code.received",), status: int = 201
    ) -> dict[str, Any]:
        resp = await self.client.post(
            "/v1/webhooks", json={"url": url, "events": list(events)}, headers=self.headers
        )
        assert resp.status == status, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body

    async def emit(self, event: str = "code.received", data: dict[str, Any] | None = None) -> None:
        """Queue an event as the services do: inside a write transaction, then wake."""
        data = data if data is not None else code_received("cred_aaaaaaaaaaaaaaaa")
        async with self.gateway.db.write() as conn:
            await wq.enqueue(conn, self.tenant_id, event, data, now=self.clock())
        self.service.wake()

    async def outbox(self) -> list[Any]:
        return await outbox(self.gateway)


async def outbox(gateway: Gateway) -> list[Any]:
    async with gateway.db.read() as conn:
        return list((await conn.execute(select(WebhookDelivery))).all())


def code_received(cred_id: str) -> dict[str, Any]:
    """Realistic metadata of a ``code.received`` event: no code in it."""
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"credential_id": cred_id, "source": "email", "received_at": stamp}


def private_settings(tmp_path: Any, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, OTPGATE_ALLOW_PRIVATE_TARGETS="1")


@pytest.fixture
async def hooks(
    tmp_path: Any,
    database_url: str,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> AsyncIterator[Hooks]:
    clock = Clock()
    tuning = Tuning(clock=clock, outbox_poll=0.05, webhook_timeout=5.0, webhook_retry_delays=FAST)
    async with opened(private_settings(tmp_path, database_url), tuning=tuning) as gateway:
        service = gateway.services.webhook_outbox
        client = await aiohttp_client(gateway.app)
        resp = await client.post("/v1/tenants", json={"name": "acme"}, headers=ADMIN)
        tenant = await resp.json()
        yield Hooks(gateway, client, service, clock, tenant["id"], bearer(tenant["api_key"]))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


# -- the endpoints API --------------------------------------------------------------


async def test_endpoint_lifecycle(hooks: Hooks) -> None:
    """Create shows the whsec_ secret once; get and list never do; delete answers 204 then 404."""
    made = await hooks.register(
        "http://127.0.0.1:9/hook", ["code.received", "interaction.expired", "code.received"]
    )
    assert set(made) >= {"id", "url", "events", "secret", "created_at", "enabled"}
    assert made["id"].startswith("whk_")
    assert made["events"] == ["code.received", "interaction.expired"]
    assert made["secret"].startswith("whsec_")
    assert len(base64.b64decode(made["secret"].removeprefix("whsec_"))) >= 24
    got = await (await hooks.client.get(f"/v1/webhooks/{made['id']}", headers=hooks.headers)).json()
    assert "secret" not in got and got["enabled"] is True and got["pending"] == 0
    assert got == {k: v for k, v in made.items() if k != "secret"}
    listed = await (await hooks.client.get("/v1/webhooks", headers=hooks.headers)).json()
    assert listed == {"webhooks": [got]}
    assert made["secret"] not in str(listed)
    url = f"/v1/webhooks/{made['id']}"
    assert (await hooks.client.delete(url, headers=hooks.headers)).status == 204
    assert (await hooks.client.get(url, headers=hooks.headers)).status == 404
    assert (await hooks.client.delete(url, headers=hooks.headers)).status == 404


async def test_another_tenants_endpoint_is_not_found(hooks: Hooks) -> None:
    """Every route on another tenant's endpoint answers 404, and its list is empty."""
    made = await hooks.register("http://127.0.0.1:9/hook")
    resp = await hooks.client.post("/v1/tenants", json={"name": "other"}, headers=ADMIN)
    other = bearer((await resp.json())["api_key"])
    url = f"/v1/webhooks/{made['id']}"
    for method, path in [
        ("GET", url),
        ("DELETE", url),
        ("POST", f"{url}/rotate"),
        ("POST", f"{url}/enable"),
    ]:
        resp = await hooks.client.request(method, path, headers=other)
        assert resp.status == 404, (method, path)
        assert (await resp.json())["error"]["code"] == "not_found"
    assert await (await hooks.client.get("/v1/webhooks", headers=other)).json() == {"webhooks": []}
    assert (await hooks.client.get(url, headers=hooks.headers)).status == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"url": "http://127.0.0.1:9/", "events": ["code.stolen"]}, 422, "unknown_event"),
        ({"url": "http://127.0.0.1:9/", "events": "code.received"}, 422, "invalid"),
        ({"url": "http://127.0.0.1:9/", "events": []}, 422, "invalid"),
        ({"url": "http://127.0.0.1:9/", "events": [5]}, 422, "invalid"),
        ({"events": ["code.received"]}, 422, "invalid"),
        ({"url": "ftp://example.com/", "events": ["code.received"]}, 422, "invalid_url"),
        ({"url": "http://u:p@example.com/", "events": ["code.received"]}, 422, "invalid_url"),
        ({"url": "http://127.0.0.1:9/", "events": ["code.received"], "x": 1}, 422, "invalid"),
        (["http://127.0.0.1:9/"], 400, "bad_input"),
    ],
)
async def test_bad_registrations(hooks: Hooks, body: Any, status: int, code: str) -> None:
    """Unknown events, a non-list, a bad URL or an unknown field get a clear JSON error."""
    resp = await hooks.client.post("/v1/webhooks", json=body, headers=hooks.headers)
    assert resp.status == status
    error = (await resp.json())["error"]
    assert error["code"] == code and error["message"]


async def test_endpoints_per_tenant_are_capped(hooks: Hooks) -> None:
    """A tenant may register MAX_WEBHOOKS endpoints; one more is refused until one is deleted."""
    made = [await hooks.register(f"http://127.0.0.1:9/{i}") for i in range(MAX_WEBHOOKS)]
    resp = await hooks.client.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/x", "events": ["code.received"]},
        headers=hooks.headers,
    )
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "too_many_webhooks"
    await hooks.client.delete(f"/v1/webhooks/{made[0]['id']}", headers=hooks.headers)
    await hooks.register("http://127.0.0.1:9/x")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://10.0.0.7/hook",
        "http://169.254.169.254/latest/meta-data",
    ],
)
async def test_private_targets_are_refused_without_the_flag(
    client: Client, new_tenant: Any, url: str
) -> None:
    """Without OTPGATE_ALLOW_PRIVATE_TARGETS a loopback or private URL is 422 unsafe_target."""
    h = (await new_tenant())["headers"]
    resp = await client.post(
        "/v1/webhooks", json={"url": url, "events": ["code.received"]}, headers=h
    )
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "unsafe_target"
    assert await (await client.get("/v1/webhooks", headers=h)).json() == {"webhooks": []}


# -- deliveries ---------------------------------------------------------------------


async def test_delivery_is_signed_as_standard_webhooks_says(
    hooks: Hooks, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receiver gets the stored body byte for byte, and standardwebhooks verifies it."""
    made = await hooks.register(receiver.url)
    other = await hooks.register(receiver.url.replace("/hook", "/other"), ["interaction.expired"])
    data = code_received("cred_aaaaaaaaaaaaaaaa")
    async with running(hooks.service):
        await hooks.emit("code.received", data)

        async def arrived() -> bool:
            return len(receiver.seen) == 1 and not await hooks.outbox()

        await eventually(arrived)
        # Nothing else comes (`other` did not subscribe): the worker looked again, found nothing.
        await Looks(monkeypatch, hooks.service, "_claim").again()
    [seen] = receiver.seen
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["webhook-id"].startswith("msg_")
    assert abs(int(seen.headers["webhook-timestamp"]) - time.time()) < 30
    assert seen.headers["webhook-signature"].startswith("v1,")
    parsed = Webhook(made["secret"]).verify(seen.body, seen.headers)
    assert parsed["type"] == "code.received" and parsed["data"] == data
    assert parsed["timestamp"].endswith("Z")
    assert seen.body.decode() == wq.event_body("code.received", data, _stamp(parsed))
    assert not verifies(other["secret"], seen)


def _stamp(parsed: dict[str, Any]) -> float:
    return datetime.fromisoformat(parsed["timestamp"].replace("Z", "+00:00")).timestamp()


async def test_rotation_signs_with_both_secrets_for_24_hours(hooks: Hooks) -> None:
    """After rotate, old and new secrets both verify for 24 h; after that only the new one."""
    receiver_a = await Receiver().start()
    receiver_b = await Receiver().start()
    try:
        a = await hooks.register(receiver_a.url)
        b = await hooks.register(receiver_b.url)
        # `a` was rotated 23 hours ago (an hour of overlap left), `b` 25 hours ago.
        rotated = {}
        for hook, hours in ((a, 23), (b, 25)):
            hooks.clock.offset = -hours * 3600.0
            resp = await hooks.client.post(
                f"/v1/webhooks/{hook['id']}/rotate", headers=hooks.headers
            )
            assert resp.status == 200
            rotated[hook["id"]] = await resp.json()
        hooks.clock.offset = 0.0
        new_a, new_b = rotated[a["id"]]["secret"], rotated[b["id"]]["secret"]
        assert new_a.startswith("whsec_") and new_a != a["secret"]

        got_a = await (
            await hooks.client.get(f"/v1/webhooks/{a['id']}", headers=hooks.headers)
        ).json()
        got_b = await (
            await hooks.client.get(f"/v1/webhooks/{b['id']}", headers=hooks.headers)
        ).json()
        assert got_a["previous_secret_expires_at"] == rotated[a["id"]]["previous_secret_expires_at"]
        assert got_b["previous_secret_expires_at"] is None

        async with running(hooks.service):
            await hooks.emit()

            async def both() -> bool:
                return bool(receiver_a.seen and receiver_b.seen) and not await hooks.outbox()

            await eventually(both)
        [seen_a], [seen_b] = receiver_a.seen, receiver_b.seen
        assert len(seen_a.headers["webhook-signature"].split(" ")) == 2
        assert verifies(a["secret"], seen_a) and verifies(new_a, seen_a)
        assert len(seen_b.headers["webhook-signature"].split(" ")) == 1
        assert verifies(new_b, seen_b) and not verifies(b["secret"], seen_b)
    finally:
        await receiver_a.stop()
        await receiver_b.stop()
    assert ROTATION_OVERLAP == 24 * 3600


async def test_a_receiver_that_was_down_gets_every_event_once(
    hooks: Hooks, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused connections, then 500s, then 204s: each event arrives once, with one stable id."""
    caplog.set_level(logging.WARNING, logger="otpgate.webhooks")
    sock = reserved()  # connections are refused until the receiver starts on it
    receiver = Receiver()
    made = await hooks.register(f"http://127.0.0.1:{port_of(sock)}/hook")
    async with running(hooks.service):
        for i in range(5):
            await hooks.emit(data=code_received(f"cred_aaaaaaaaaaaaaaa{i}"))

        async def refused_twice() -> bool:
            rows = await hooks.outbox()
            return len(rows) == 5 and all(r.attempts >= 2 for r in rows)

        await eventually(refused_twice)
        rows = await hooks.outbox()
        assert {r.last_error for r in rows} == {"cannot connect (Connection refused)"}
        queued = {r.id for r in rows}

        receiver.status = 500
        await receiver.start(sock)
        try:

            async def failed_with_500() -> bool:
                rows = await hooks.outbox()
                return len({s.headers["webhook-id"] for s in receiver.seen}) == 5 and all(
                    r.last_status == 500 for r in rows
                )

            await eventually(failed_with_500)
            receiver.status = 204

            async def drained() -> bool:
                return not await hooks.outbox()

            await eventually(drained)
        finally:
            await receiver.stop()
    delivered = [s.headers["webhook-id"] for s in receiver.ok()]
    assert sorted(delivered) == sorted(queued)  # each exactly once
    for msg_id in queued:
        attempts = [s for s in receiver.seen if s.headers["webhook-id"] == msg_id]
        assert len({s.body for s in attempts}) == 1
        assert all(verifies(made["secret"], s) for s in attempts)
    failures = [r for r in caplog.records if r.getMessage() == "webhook delivery failed"]
    assert failures and all(r.webhook == made["id"] for r in failures)  # type: ignore[attr-defined]
    assert {r.status for r in failures} == {None, 500}  # type: ignore[attr-defined]
    assert all(isinstance(r.attempt, int) for r in failures)  # type: ignore[attr-defined]


async def test_a_restart_loses_nothing(tmp_path: Any, database_url: str) -> None:
    """Queued and half-sent deliveries survive closing the gateway and go out after it reopens."""
    settings = private_settings(tmp_path, database_url)
    receiver = await Receiver().start()
    receiver.status = 503
    clock = Clock()
    try:
        async with opened(settings) as gateway:
            service = service_for(gateway, clock)
            secret, tenant_id = await _tenant_with_endpoint(gateway, receiver.url)
            for i in range(3):
                async with gateway.db.write() as conn:
                    await wq.enqueue(
                        conn, tenant_id, "code.received", code_received(f"cred_{i}"), now=clock()
                    )
            async with running(service):

                async def tried() -> bool:
                    return len({s.headers["webhook-id"] for s in receiver.seen}) == 3

                await eventually(tried)
            # One more is leased by a worker that then dies without a word (kill -9 mid-send).
            async with gateway.db.write() as conn:
                await wq.enqueue(
                    conn, tenant_id, "code.received", code_received("cred_x"), now=clock()
                )
                await conn.execute(update(WebhookDelivery).values(next_attempt_at=0.0))
                assert len(await wq.claim(conn, clock(), lease=60.0, limit=10)) == 4

        receiver.status = 200
        async with opened(settings) as gateway:
            clock.offset = 61.0  # the dead worker's lease has lapsed
            service = service_for(gateway, clock)
            async with running(service):
                service.wake()

                async def drained() -> bool:
                    return not await outbox(gateway)

                await eventually(drained)
    finally:
        await receiver.stop()
    ids = [s.headers["webhook-id"] for s in receiver.ok()]
    assert len(ids) == len(set(ids)) == 4
    assert {s.headers["webhook-id"] for s in receiver.seen} == set(ids)
    assert all(verifies(secret, s) for s in receiver.seen)


async def _tenant_with_endpoint(gateway: Gateway, url: str) -> tuple[str, str]:
    """A tenant and one endpoint made through the services; its secret and the tenant id."""
    tenant_id = (await gateway.services.tenants.create("acme")).id
    _, secret = await gateway.services.webhook_endpoints.create(
        tenant_id, url=url, events=["code.received"]
    )
    return secret, tenant_id


async def test_410_gone_disables_the_endpoint(
    hooks: Hooks, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 410 turns the endpoint off and drops what was queued; enable turns it back on."""
    receiver.status = 410
    made = await hooks.register(receiver.url)
    url = f"/v1/webhooks/{made['id']}"
    async with running(hooks.service):
        for _ in range(3):
            await hooks.emit()

        async def disabled() -> bool:
            got = await (await hooks.client.get(url, headers=hooks.headers)).json()
            return got["enabled"] is False and got["pending"] == 0

        await eventually(disabled)
        got = await (await hooks.client.get(url, headers=hooks.headers)).json()
        assert "410" in got["disabled_reason"]
        seen = len(receiver.seen)
        await hooks.emit()  # nothing is queued for a disabled endpoint
        assert not await hooks.outbox()
        await Looks(monkeypatch, hooks.service, "_claim").again()
        assert len(receiver.seen) == seen

        receiver.status = 204
        resp = await hooks.client.post(f"{url}/enable", headers=hooks.headers)
        assert resp.status == 200
        assert (await resp.json())["enabled"] is True
        assert (await resp.json())["disabled_reason"] is None
        await hooks.emit()

        async def delivered() -> bool:
            return len(receiver.ok()) == 1 and not await hooks.outbox()

        await eventually(delivered)


async def test_redirects_are_not_followed(hooks: Hooks, receiver: Receiver) -> None:
    """A 3xx is a failed attempt: the redirect's target, another listener, sees nothing."""
    target = await Receiver().start()
    try:
        receiver.status = 307
        receiver.headers = {"Location": target.url}
        await hooks.register(receiver.url)
        async with running(hooks.service):
            await hooks.emit()

            async def retried() -> bool:
                rows = await hooks.outbox()
                return len(receiver.seen) >= 2 and bool(rows) and rows[0].attempts >= 2

            await eventually(retried)
        [row] = await hooks.outbox()
        assert row.last_status == 307 and "redirect" in row.last_error
        assert target.seen == []
    finally:
        await target.stop()


async def test_a_timeout_is_a_failed_attempt(hooks: Hooks, receiver: Receiver) -> None:
    """An endpoint slower than the timeout fails that attempt; the retry then delivers."""
    service = service_for(hooks.gateway, hooks.clock, timeout=0.3)
    hooks.service = service
    receiver.delay = 2.0
    await hooks.register(receiver.url)
    async with running(service):
        await hooks.emit()

        async def timed_out() -> bool:
            rows = await hooks.outbox()
            return bool(rows) and rows[0].last_error == "no answer within 0.3 s"

        await eventually(timed_out)
        receiver.delay = 0.0

        async def drained() -> bool:
            return not await hooks.outbox()

        await eventually(drained)
    assert len({s.headers["webhook-id"] for s in receiver.seen}) == 1
    assert len(receiver.seen) >= 2


async def test_undeliverable_events_are_given_up(
    hooks: Hooks, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """After MAX_ATTEMPTS failures a delivery is dropped with a warning naming webhook and event."""
    caplog.set_level(logging.INFO, logger="otpgate.webhooks")
    hooks.service = service_for(hooks.gateway, hooks.clock, retry_delays=(0.01,))
    receiver.status = 500
    made = await hooks.register(receiver.url)
    data = code_received("cred_aaaaaaaaaaaaaaaa")
    async with running(hooks.service):
        await hooks.emit(data=data)

        async def gone() -> bool:
            return not await hooks.outbox()

        await eventually(gone)
    assert len(receiver.seen) == MAX_ATTEMPTS
    assert len({s.headers["webhook-id"] for s in receiver.seen}) == 1
    [given_up] = [r for r in caplog.records if r.getMessage() == "webhook delivery given up"]
    assert given_up.webhook == made["id"]  # type: ignore[attr-defined]
    assert given_up.event == "code.received"  # type: ignore[attr-defined]
    logged = "\n".join(
        TextFormatter().format(r) + JsonFormatter().format(r) for r in caplog.records
    )
    # No body, nor any part of it, is logged (the times in log lines may match received_at).
    assert receiver.seen[0].body.decode() not in logged
    assert '"credential_id"' not in logged and data["credential_id"] not in logged


async def test_the_outbox_is_delivered_across_the_tenants_endpoints(
    hooks: Hooks, receiver: Receiver
) -> None:
    """An event goes to every endpoint subscribed to it, each with its own webhook-id."""
    a = await hooks.register(receiver.url + "/a", ["code.received"])
    b = await hooks.register(receiver.url + "/b", ["code.received", "interaction.expired"])
    await hooks.register(receiver.url + "/c", ["interaction.code_required"])
    async with running(hooks.service):
        await hooks.emit("code.received")
        await hooks.emit("interaction.expired", {"interaction_id": "int_aaaaaaaaaaaaaaaa"})

        async def three() -> bool:
            return len(receiver.ok()) == 3 and not await hooks.outbox()

        await eventually(three)
    ids = {s.headers["webhook-id"] for s in receiver.seen}
    assert len(ids) == 3
    assert sum(verifies(a["secret"], s) for s in receiver.seen) == 1
    assert sum(verifies(b["secret"], s) for s in receiver.seen) == 2


async def test_two_workers_never_send_the_same_delivery(hooks: Hooks, receiver: Receiver) -> None:
    """Two replicas' workers on one database share the outbox: each event arrives once."""
    second = service_for(hooks.gateway, hooks.clock)
    await hooks.register(receiver.url)
    receiver.delay = 0.01
    async with running(hooks.service, second):
        for i in range(30):
            await hooks.emit(data=code_received(f"cred_{i:016d}"))
            second.wake()

        async def drained() -> bool:
            return len(receiver.seen) >= 30 and not await hooks.outbox()

        await eventually(drained)
    ids = [s.headers["webhook-id"] for s in receiver.seen]
    assert len(ids) == len(set(ids)) == 30


async def test_deleting_an_endpoint_drops_its_queue(hooks: Hooks) -> None:
    """Deliveries queued for an endpoint go with it; the list shows how many were pending."""
    made = await hooks.register("http://127.0.0.1:9/hook")
    for _ in range(3):
        await hooks.emit()
    got = await (await hooks.client.get(f"/v1/webhooks/{made['id']}", headers=hooks.headers)).json()
    assert got["pending"] == 3
    await hooks.client.delete(f"/v1/webhooks/{made['id']}", headers=hooks.headers)
    assert not await hooks.outbox()


async def test_master_key_rotation_rewraps_webhook_keys(hooks: Hooks, receiver: Receiver) -> None:
    """keys.rotate rewraps endpoints' data keys too, and signing still works afterwards."""
    made = await hooks.register(receiver.url)
    assert await keys.usage(hooks.gateway.db) == {1: 1}
    result = await keys.rotate(hooks.gateway.db, hooks.gateway.keyring)
    assert result.rewrapped == 1
    assert await keys.usage(hooks.gateway.db) == {2: 1}
    await keys.retire(hooks.gateway.db, hooks.gateway.keyring, 1)
    async with running(hooks.service):
        await hooks.emit()

        async def delivered() -> bool:
            return len(receiver.ok()) == 1

        await eventually(delivered)
    assert verifies(made["secret"], receiver.seen[0])


async def test_no_secret_or_code_in_any_delivered_byte(
    hooks: Hooks, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Canary: no webhook secret, password, authenticator secret or code in headers or body."""
    caplog.set_level(logging.DEBUG)
    password = "canary-Pa55word-7f3c9e"
    totp_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    h = hooks.headers
    cred = await (
        await hooks.client.post(
            "/v1/credentials", json={"name": "canary", "password": password}, headers=h
        )
    ).json()
    url = f"/v1/credentials/{cred['id']}"
    resp = await hooks.client.put(
        f"{url}/authenticator", json={"secret": totp_secret, "kind": "totp", "digits": 8}, headers=h
    )
    assert resp.status == 200
    code = (await (await hooks.client.get(f"{url}/code", headers=h)).json())["code"]
    made = await hooks.register(receiver.url, ["code.received", "interaction.code_required"])
    rotated = await (await hooks.client.post(f"/v1/webhooks/{made['id']}/rotate", headers=h)).json()
    async with running(hooks.service):
        await hooks.emit("code.received", code_received(cred["id"]))
        await hooks.emit(
            "interaction.code_required",
            {"interaction_id": "int_aaaaaaaaaaaaaaaa", "credential_id": cred["id"]},
        )

        async def both() -> bool:
            return len(receiver.ok()) == 2 and not await hooks.outbox()

        await eventually(both)
    needles: list[str] = [password, totp_secret, code]
    for secret in (made["secret"], rotated["secret"]):
        key = base64.b64decode(secret.removeprefix("whsec_"))
        needles += [secret, secret.removeprefix("whsec_"), key.hex()]
    wire = b"\n".join(s.raw for s in receiver.seen)
    raw_keys = [
        base64.b64decode(s.removeprefix("whsec_")) for s in (made["secret"], rotated["secret"])
    ]
    for needle in needles:
        assert needle.encode() not in wire
        assert needle.lower().encode() not in wire.lower()
    for key in raw_keys:
        assert key not in wire
    async with hooks.gateway.db.read() as conn:
        stored = [r.body for r in (await conn.execute(select(col(WebhookDelivery.body)))).all()]
    logged = "\n".join(TextFormatter().format(r) for r in caplog.records)
    for needle in needles:
        assert needle not in logged
        assert all(needle not in body for body in stored)
    for seen in receiver.seen:
        assert verifies(made["secret"], seen) and verifies(rotated["secret"], seen)
