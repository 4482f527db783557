"""Login attempts: one open login per credential, codes only from after it opened, reject, finish.

On SQLite and PostgreSQL, through the HTTP API; two PostgreSQL replicas for
the one-open-login rule and the queue across replicas.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pyotp
from aiohttp.test_utils import TestClient

from gateway import otp
from gateway.app import Gateway, Tuning
from gateway.services.inbound import Message

from .helpers import bearer, eventually, make_settings, opened, replica_pair

Client = TestClient[Any, Any]
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


async def _credential(client: Client, owner: dict[str, str], **extra: Any) -> dict[str, Any]:
    resp = await client.post("/v1/credentials", json={"name": "bank", **extra}, headers=owner)
    assert resp.status == 201
    body: dict[str, Any] = await resp.json()
    return body


async def deliver(gw: Gateway, inbox: str, code: str) -> None:
    route = await gw.services.inbound.route_for_inbox(inbox.partition("@")[0])
    assert route is not None
    message = Message(
        channel="email",
        sender="no-reply@bank.example",
        sender_domain="bank.example",
        subject="Your code",
        text=f"Your verification code is {code}.",
    )
    await gw.services.inbound.accept(message, [route])


async def _open(client: Client, cred_id: str, h: dict[str, str], **body: Any) -> Any:
    return await client.post(f"/v1/credentials/{cred_id}/logins", json=body, headers=h)


async def test_one_open_login_per_credential(client: Client, new_tenant: Any) -> None:
    owner = (await new_tenant())["headers"]
    cred = await _credential(client, owner)
    first = await _open(client, cred["id"], owner)
    assert first.status == 201
    login = await first.json()
    assert login["status"] == "open" and login["credential_id"] == cred["id"]
    assert login["started_at"] < login["expires_at"]
    second = await _open(client, cred["id"], owner)
    assert second.status == 409
    assert (await second.json())["error"]["code"] == "login_in_progress"
    # Another credential is free.
    other = await _credential(client, owner)
    assert (await _open(client, other["id"], owner)).status == 201
    # Finished, the credential is free again.
    resp = await client.post(f"/v1/logins/{login['id']}/finish", json={"outcome": "succeeded"},
                             headers=owner)  # fmt: skip
    assert resp.status == 200
    done = await resp.json()
    assert done["status"] == "succeeded" and done["finished_at"] is not None
    assert (await _open(client, cred["id"], owner)).status == 201


async def test_a_second_agent_waits_for_the_first(client: Client, new_tenant: Any) -> None:
    owner = (await new_tenant())["headers"]
    cred = await _credential(client, owner)
    login = await (await _open(client, cred["id"], owner)).json()
    queued = asyncio.create_task(_open(client, cred["id"], owner, wait=20))
    await asyncio.sleep(0.3)
    assert not queued.done()
    started = time.monotonic()
    await client.post(f"/v1/logins/{login['id']}/finish", json={"outcome": "failed"},
                      headers=owner)  # fmt: skip
    resp = await asyncio.wait_for(queued, 20)
    assert resp.status == 201
    assert time.monotonic() - started < 5  # woken by the finish, not by its 20 s
    # A wait that runs out is a 409 like no wait at all.
    resp = await _open(client, cred["id"], owner, wait=0.3)
    assert resp.status == 409


async def test_codes_from_before_the_login_are_not_its_own(
    client: Client, gateway: Gateway, new_tenant: Any
) -> None:
    owner = (await new_tenant())["headers"]
    cred = await _credential(client, owner)
    await deliver(gateway, cred["inbox"], "111111")  # someone else's, earlier
    login = await (await _open(client, cred["id"], owner)).json()
    url = f"/v1/logins/{login['id']}/code"
    assert (await client.get(url, headers=owner)).status == 204
    waiting = asyncio.create_task(client.get(url + "?wait=10", headers=owner))
    await asyncio.sleep(0.2)
    await deliver(gateway, cred["inbox"], "222222")
    resp = await asyncio.wait_for(waiting, 10)
    assert (await resp.json())["code"] == "222222"
    # Handed out once.
    assert (await client.get(url, headers=owner)).status == 204


async def test_reject_hands_out_only_a_newer_code(
    client: Client, gateway: Gateway, new_tenant: Any
) -> None:
    owner = (await new_tenant())["headers"]
    cred = await _credential(client, owner)
    login = await (await _open(client, cred["id"], owner)).json()
    base = f"/v1/logins/{login['id']}"
    resp = await client.post(f"{base}/reject", headers=owner)
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "nothing_handed_out"
    await deliver(gateway, cred["inbox"], "333333")
    assert (await (await client.get(f"{base}/code", headers=owner)).json())["code"] == "333333"
    assert (await client.post(f"{base}/reject", headers=owner)).status == 204
    # Rejecting twice refers to nothing new.
    assert (await client.post(f"{base}/reject", headers=owner)).status == 409
    assert (await client.get(f"{base}/code", headers=owner)).status == 204
    await deliver(gateway, cred["inbox"], "444444")
    assert (await (await client.get(f"{base}/code", headers=owner)).json())["code"] == "444444"


async def test_a_rejected_totp_step_is_not_handed_out_again(tmp_path: Path) -> None:
    """TOTP in a login: after a reject, the next code is from a later step (waited for)."""
    period = 2
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    async with opened(make_settings(tmp_path), tuning=Tuning(clock=clock)) as gw:
        tenant = await gw.services.tenants.create("acme")
        cred = await gw.services.credentials.create(
            tenant.id, name="c", username=None, password=None
        )
        auth = otp.from_fields(secret=SECRET, kind="totp", digits=None, period=period,
                               algorithm=None, counter=None)  # fmt: skip
        await gw.services.credentials.set_authenticator(tenant.id, cred.id, auth)
        # Start early in a step, so the first code is not about to change.
        now = clock()
        offset[0] += (period - now % period) + 0.05
        login = await gw.services.logins.open(tenant.id, cred.id)
        first = await gw.services.logins.code(tenant.id, login.id)
        assert first is not None and first.step is not None
        totp = pyotp.TOTP(SECRET, interval=period)
        assert first.code == totp.at(first.step * period)
        again = await gw.services.logins.code(tenant.id, login.id)
        assert again is not None and again.code == first.code  # not refused yet
        await gw.services.logins.reject(tenant.id, login.id)
        assert await gw.services.logins.code(tenant.id, login.id) is None  # no wait: 204
        started = time.monotonic()
        later = await gw.services.logins.code(tenant.id, login.id, wait=period + 1)
        assert later is not None and later.step == first.step + 1
        assert later.code == totp.at(later.step * period)
        assert time.monotonic() - started < period + 0.5


async def test_an_expired_login_is_finished_as_failed(
    client: Client, gateway: Gateway, new_tenant: Any
) -> None:
    tenant = await new_tenant()
    owner = tenant["headers"]
    cred = await _credential(client, owner)
    login = await (await _open(client, cred["id"], owner, ttl=1)).json()
    await asyncio.sleep(1.1)
    shown = await (await client.get(f"/v1/logins/{login['id']}", headers=owner)).json()
    assert shown["status"] == "failed"
    resp = await client.get(f"/v1/logins/{login['id']}/code", headers=owner)
    assert resp.status == 410 and (await resp.json())["error"]["code"] == "login_finished"
    resp = await client.post(f"/v1/logins/{login['id']}/finish", json={"outcome": "succeeded"},
                             headers=owner)  # fmt: skip
    assert resp.status == 409
    assert gateway.services.metrics.logins.value("failed") == 1
    # The sweeper ends the next one without anybody asking.
    login = await (await _open(client, cred["id"], owner, ttl=1)).json()
    await asyncio.sleep(1.1)
    assert await gateway.services.logins.sweep() == 1
    assert gateway.services.metrics.logins.value("failed") == 2
    metrics = await (await client.get("/metrics")).text()
    assert 'otpgate_logins_total{outcome="failed"} 2' in metrics
    events = (await gateway.services.audit.page(tenant["id"])).events
    finished = [e for e in events if e["action"] == "login.finished"]
    assert [(e["outcome"], e["actor"]) for e in finished] == [("failed", {"system": True})] * 2


async def test_bad_login_requests(client: Client, new_tenant: Any) -> None:
    owner = (await new_tenant())["headers"]
    cred = await _credential(client, owner)
    for body in ({"ttl": 0}, {"ttl": 901}, {"ttl": "60"}, {"wait": 301}, {"wait": -1}, {"x": 1}):
        resp = await _open(client, cred["id"], owner, **body)
        assert resp.status == 422, body
    login = await (await _open(client, cred["id"], owner)).json()
    for body in ({"outcome": "maybe"}, {}, {"outcome": None}):
        resp = await client.post(f"/v1/logins/{login['id']}/finish", json=body, headers=owner)
        assert resp.status == 422, body
    assert (await client.get("/v1/logins/log_aaaaaaaaaaaaaaaa", headers=owner)).status == 404
    other = (await new_tenant("other"))["headers"]
    assert (await client.get(f"/v1/logins/{login['id']}", headers=other)).status == 404


async def test_a_key_limited_to_other_credentials_does_not_see_the_login(
    client: Client, new_tenant: Any
) -> None:
    owner = (await new_tenant())["headers"]
    mine, theirs = await _credential(client, owner), await _credential(client, owner)
    body = {"name": "a", "role": "agent", "credential_ids": [mine["id"]]}
    resp = await client.post("/v1/keys", json=body, headers=owner)
    agent = bearer((await resp.json())["key"])
    login = await (await _open(client, theirs["id"], owner)).json()
    for path in ("", "/code", "/link"):
        assert (await client.get(f"/v1/logins/{login['id']}{path}", headers=agent)).status == 404
    assert (await _open(client, theirs["id"], agent)).status == 404
    assert (await _open(client, mine["id"], agent)).status == 201


async def test_logins_are_audited(client: Client, gateway: Gateway, new_tenant: Any) -> None:
    tenant = await new_tenant()
    owner = tenant["headers"]
    cred = await _credential(client, owner)
    login = await (await _open(client, cred["id"], owner)).json()
    await client.post(f"/v1/logins/{login['id']}/finish", json={"outcome": "succeeded"},
                      headers=owner)  # fmt: skip
    events = (await gateway.services.audit.page(tenant["id"])).events
    got = [(e["action"], e["object_id"], e["outcome"]) for e in events[-2:]]
    assert got == [("login.opened", login["id"], "ok"),
                   ("login.finished", login["id"], "succeeded")]  # fmt: skip
    assert gateway.services.metrics.logins.value("succeeded") == 1


async def test_one_open_login_across_two_replicas(tmp_path: Path, postgres_database: str) -> None:
    """Ten agents on two replicas open at once: one wins, the rest queue and go one by one."""
    async with replica_pair(tmp_path, postgres_database) as (a, b):
        tenant = await a.services.tenants.create("acme")
        cred = await a.services.credentials.create(
            tenant.id, name="c", username=None, password=None
        )
        results = await asyncio.gather(
            *(gw.services.logins.open(tenant.id, cred.id) for gw in (a, b) * 5),
            return_exceptions=True,
        )
        won = [r for r in results if not isinstance(r, BaseException)]
        lost = [r for r in results if isinstance(r, BaseException)]
        assert len(won) == 1 and len(lost) == 9
        assert {type(e).__name__ for e in lost} == {"Conflict"}

        # Queued on replica B, woken by a finish on replica A.
        queued = asyncio.create_task(b.services.logins.open(tenant.id, cred.id, wait=30))
        await eventually(lambda: _parked(b, cred.id))
        started = time.monotonic()
        await a.services.logins.finish(tenant.id, won[0].id, "succeeded")
        second = await asyncio.wait_for(queued, 30)
        assert second.status == "open"
        assert time.monotonic() - started < 5


async def _parked(gw: Gateway, cred_id: str) -> bool:
    return gw.bells.waiters(f"login:{cred_id}") == 1
