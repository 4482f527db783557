"""Backup codes: a sealed set per credential, each handed out once, also to concurrent takers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import text

from gateway.app import Gateway
from gateway.errors import Conflict

from .helpers import make_settings, opened, reset_postgres

Client = TestClient[Any, Any]
CODES = ["8371-2201", "5529-0418", "1177-9093", "6402-3856"]


async def _setup(client: Client, new_tenant: Any) -> tuple[dict[str, Any], str]:
    tenant = await new_tenant()
    resp = await client.post("/v1/credentials", json={"name": "bank"}, headers=tenant["headers"])
    return tenant, (await resp.json())["id"]


async def _queued(gateway: Gateway, event: str) -> list[Any]:
    async with gateway.db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT body FROM webhook_deliveries WHERE event = :e"), {"e": event}
        )
        return list(rows.scalars().all())


async def test_each_code_is_handed_out_once(
    client: Client, gateway: Gateway, new_tenant: Any
) -> None:
    tenant, cred = await _setup(client, new_tenant)
    h = tenant["headers"]
    url = f"/v1/credentials/{cred}/backup-codes"
    hook = {"url": "https://hooks.example.com/otp", "events": ["backup_codes.low"]}
    assert (await client.post("/v1/webhooks", json=hook, headers=h)).status == 201
    resp = await client.put(url, json={"codes": [f"  {c} " for c in CODES]}, headers=h)
    assert resp.status == 200 and await resp.json() == {"remaining": 4}
    assert await (await client.get(url, headers=h)).json() == {"remaining": 4}
    taken = []
    for left in (3, 2, 1, 0):
        resp = await client.post(f"{url}/take", headers=h)
        assert resp.status == 200
        body = await resp.json()
        assert body["remaining"] == left
        taken.append(body["code"])
    assert taken == CODES  # in order, trimmed, each once
    resp = await client.post(f"{url}/take", headers=h)
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "no_backup_codes"
    # backup_codes.low once, when two were left; metadata only.
    (low,) = await _queued(gateway, "backup_codes.low")
    assert '"remaining":2' in low and cred in low
    assert not any(c in low for c in CODES)
    # The trail: one set, four reads, no code in it.
    events = (await gateway.services.audit.page(tenant["id"])).events
    actions = [e["action"] for e in events]
    assert actions.count("backup_codes.set") == 1 and actions.count("backup_code.read") == 4
    assert not any(c in str(events) for c in CODES)


async def test_the_set_is_sealed_and_replaced_whole(
    client: Client, gateway: Gateway, new_tenant: Any
) -> None:
    tenant, cred = await _setup(client, new_tenant)
    h = tenant["headers"]
    url = f"/v1/credentials/{cred}/backup-codes"
    await client.put(url, json={"codes": CODES}, headers=h)
    async with gateway.db.engine.connect() as conn:
        raw = repr((await conn.execute(text("SELECT * FROM backup_codes"))).all())
    assert not any(c in raw or c.encode().hex() in raw for c in CODES)
    await client.put(url, json={"codes": ["new-one"]}, headers=h)
    body = await (await client.post(f"{url}/take", headers=h)).json()
    assert body == {"code": "new-one", "remaining": 0}


async def test_bad_sets_are_refused(client: Client, new_tenant: Any) -> None:
    tenant, cred = await _setup(client, new_tenant)
    h = tenant["headers"]
    url = f"/v1/credentials/{cred}/backup-codes"
    await client.put(url, json={"codes": ["keep"]}, headers=h)
    for body in (
        {"codes": []},
        {"codes": [f"c{n}" for n in range(51)]},
        {"codes": ["ok", ""]},
        {"codes": ["ok", "   "]},
        {"codes": ["x" * 65]},
        {"codes": ["tab\there"]},
        {"codes": [123]},
        {"codes": "abc"},
        {},
    ):
        resp = await client.put(url, json=body, headers=h)
        assert resp.status == 422, body
        assert set((await resp.json())["error"]) == {"code", "message"}
    assert await (await client.get(url, headers=h)).json() == {"remaining": 1}  # unchanged
    unknown = "/v1/credentials/cred_aaaaaaaaaaaaaaaa/backup-codes"
    assert (await client.put(unknown, json={"codes": ["a"]}, headers=h)).status == 404
    assert (await client.post(unknown + "/take", headers=h)).status == 404


async def test_concurrent_takers_on_two_replicas_never_share_a_code(
    tmp_path: Path, postgres_database: str
) -> None:
    await reset_postgres(postgres_database)
    async with (
        opened(make_settings(tmp_path, postgres_database)) as a,
        opened(make_settings(tmp_path, postgres_database)) as b,
    ):
        tenant = await a.services.tenants.create("acme")
        cred = await a.services.credentials.create(
            tenant.id, name="c", username=None, password=None
        )
        codes = [f"code-{n:02}" for n in range(20)]
        await a.services.backup_codes.replace(tenant.id, cred.id, codes)
        takes = [gw.services.backup_codes.take(tenant.id, cred.id) for gw in (a, b) * 15]
        results = await asyncio.gather(*takes, return_exceptions=True)
        got = [r.code for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, BaseException)]
        assert sorted(got) == codes  # every code once
        assert len(refused) == 10 and all(isinstance(r, Conflict) for r in refused)
