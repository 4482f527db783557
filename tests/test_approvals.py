"""Push approvals: a person approves or denies a sign-in, matching a number, behind the submit link.

The number to match is shown only on the person's page: never in a webhook,
the audit trail or the store in clear.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, text

from gateway.app import Gateway
from gateway.demo.agent import CHROMIUM, CHROMIUM_ARGS
from gateway.errors import Expired
from gateway.store.models import WebhookDelivery

from .helpers import (
    ADMIN,
    Served,
    bearer,
    make_settings,
    need_browser,
    opened,
    replica_pair,
    served_on_loopback,
)

Client = TestClient[Any, Any]
MATCH = "47"


def path_of(url: str) -> str:
    return "/submit/" + url.rsplit("/submit/", 1)[1]


async def _approval(client: Client, new_tenant: Any, **extra: Any) -> tuple[Any, Any, Any]:
    tenant = await new_tenant()
    h = tenant["headers"]
    hook = {"url": "https://hooks.example.com/otp", "events": ["interaction.code_required",
                                                               "interaction.decided"]}  # fmt: skip
    assert (await client.post("/v1/webhooks", json=hook, headers=h)).status == 201
    cred = await (await client.post("/v1/credentials", json={"name": "Okta"}, headers=h)).json()
    body = {"kind": "approval", "prompt": "Approve the sign-in from Lisbon", **extra}
    resp = await client.post(f"/v1/credentials/{cred['id']}/interactions", json=body, headers=h)
    assert resp.status == 201, await resp.text()
    return tenant, cred, await resp.json()


async def test_a_person_approves_and_the_waiting_agent_knows_at_once(
    client: Client, gateway: Gateway, new_tenant: Any
) -> None:
    tenant, _cred, created = await _approval(client, new_tenant, match=MATCH)
    h = tenant["headers"]
    assert (created["kind"], created["status"]) == ("approval", "pending")
    page = await client.get(path_of(created["submit_url"]))
    html = await page.text()
    assert page.status == 200
    assert f'id="match" aria-label="Number to match">{MATCH}<' in html
    assert ">Approved</button>" in html and ">Denied</button>" in html
    assert "<script" not in html
    url = f"/v1/interactions/{created['id']}"
    waiting = asyncio.create_task(client.get(f"{url}?wait=30", headers=h))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    started = time.monotonic()
    resp = await client.post(path_of(created["submit_url"]), data={"decision": "approved"})
    assert resp.status == 200 and "approved" in (await resp.text())
    shown = await (await asyncio.wait_for(waiting, 30)).json()
    assert (shown["kind"], shown["status"]) == ("approval", "approved")
    assert time.monotonic() - started < 5
    # Decided once.
    again = await client.post(path_of(created["submit_url"]), json={"decision": "denied"})
    assert again.status == 409
    again = await client.post(f"{url}/decision", json={"decision": "denied"}, headers=h)
    assert again.status == 409
    assert (await client.get(path_of(created["submit_url"]))).status == 409
    # The number is in no webhook, no audit event and not in clear in the store.
    async with gateway.db.read() as conn:
        bodies = (await conn.execute(select(WebhookDelivery.body))).scalars().all()
    parsed = [json.loads(b) for b in bodies]
    assert [p["type"] for p in parsed] == ["interaction.code_required", "interaction.decided"]
    assert parsed[0]["data"]["kind"] == "approval"
    assert parsed[1]["data"]["decision"] == "approved"
    assert not any(f'"{MATCH}"' in b or "match" in b for b in bodies)
    events = (await gateway.services.audit.page(tenant["id"])).events
    answered = [e for e in events if e["action"] == "interaction.answered"]
    assert [(e["outcome"], e["actor"]) for e in answered] == [
        ("approved", {"submit_link": created["id"]})
    ]
    async with gateway.db.engine.connect() as conn:
        raw = repr((await conn.execute(text("SELECT * FROM interactions"))).all())
    assert f"'{MATCH}'" not in raw and MATCH.encode().hex() not in raw


async def test_deny_with_the_key_and_by_json(client: Client, new_tenant: Any) -> None:
    tenant, _cred, created = await _approval(client, new_tenant)
    h = tenant["headers"]
    url = f"/v1/interactions/{created['id']}"
    resp = await client.post(f"{url}/decision", json={"decision": "denied"}, headers=h)
    assert resp.status == 204
    assert (await (await client.get(url, headers=h)).json())["status"] == "denied"
    tenant, _cred, created = await _approval(client, new_tenant)
    resp = await client.post(path_of(created["submit_url"]), json={"decision": "denied"})
    assert resp.status == 204


async def test_mixing_codes_and_decisions_is_refused(client: Client, new_tenant: Any) -> None:
    tenant, cred, approval = await _approval(client, new_tenant)
    h = tenant["headers"]
    base = f"/v1/credentials/{cred['id']}/interactions"
    code_req = await (await client.post(base, json={}, headers=h)).json()
    decide_code_req = f"/v1/interactions/{code_req['id']}/decision"
    code_on_approval = f"/v1/interactions/{approval['id']}/code"
    checks = [
        (client.post(base, json={"match": "12"}, headers=h), 422),  # match on a code request
        (client.post(base, json={"kind": "approval", "match": "12 34"}, headers=h), 422),
        (client.post(base, json={"kind": "approval", "match": "9" * 17}, headers=h), 422),
        (client.post(base, json={"kind": "push"}, headers=h), 422),
        (client.post(path_of(code_req["submit_url"]), json={"decision": "approved"}), 422),
        (client.post(decide_code_req, json={"decision": "approved"}, headers=h), 422),
        (client.post(path_of(approval["submit_url"]), json={"code": "123456"}), 422),
        (client.post(code_on_approval, json={"code": "1"}, headers=h), 422),
        (client.get(f"/v1/interactions/{approval['id']}/code", headers=h), 422),
        (client.post(path_of(approval["submit_url"]), json={"decision": "maybe"}), 422),
        (client.post(f"/v1/interactions/{approval['id']}/decision", json={}, headers=h), 422),
    ]
    for request, status in checks:
        resp = await request
        assert resp.status == status, await resp.text()
        assert set((await resp.json())["error"]) == {"code", "message"}
    # Both still pending.
    for created in (approval, code_req):
        shown = await (await client.get(f"/v1/interactions/{created['id']}", headers=h)).json()
        assert shown["status"] == "pending"


async def test_an_expired_approval_takes_no_decision(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, OTPGATE_INTERACTION_TTL="1")
    async with opened(settings) as gw:
        tenant = await gw.services.tenants.create("acme")
        cred = await gw.services.credentials.create(
            tenant.id, name="c", username=None, password=None
        )
        created = await gw.services.interactions.create(tenant.id, cred.id, kind="approval")
        started = time.monotonic()
        shown = await gw.services.interactions.get(tenant.id, created.id, wait=10)
        assert shown.status == "expired" and time.monotonic() - started < 3
        with pytest.raises(Expired):
            await gw.services.interactions.decide(tenant.id, created.id, "approved")


async def test_a_decision_on_one_replica_wakes_an_agent_on_another(
    tmp_path: Path, postgres_database: str
) -> None:
    async with replica_pair(tmp_path, postgres_database) as (a, b):
        tenant = await a.services.tenants.create("acme")
        cred = await a.services.credentials.create(
            tenant.id, name="c", username=None, password=None
        )
        created = await a.services.interactions.create(
            tenant.id, cred.id, kind="approval", match="83"
        )
        waiting = asyncio.create_task(b.services.interactions.get(tenant.id, created.id, wait=30))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await a.services.interactions.decide(tenant.id, created.id, "approved")
        shown = await asyncio.wait_for(waiting, 30)
        assert shown.status == "approved" and time.monotonic() - started < 5


async def test_a_person_approves_on_a_phone_without_javascript(tmp_path: Path) -> None:
    """Chromium at phone width, JavaScript off: the number is large, and Approved works."""
    need_browser()

    async with served_on_loopback(tmp_path) as served:
        await _phone_flow(served)


async def _phone_flow(served: Served) -> None:
    from playwright.async_api import async_playwright

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{served.url}/v1/tenants", json={"name": "a"}, headers=ADMIN) as r:
            h = bearer((await r.json())["api_key"])
        async with session.post(f"{served.url}/v1/credentials", json={"name": "Okta"},
                                headers=h) as r:  # fmt: skip
            cred = (await r.json())["id"]
        url = f"{served.url}/v1/credentials/{cred}/interactions"
        async with session.post(url, json={"kind": "approval", "match": "47"}, headers=h) as r:
            created = await r.json()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                phone = await browser.new_context(
                    viewport={"width": 375, "height": 740},
                    is_mobile=True,
                    has_touch=True,
                    java_script_enabled=False,
                )
                page = await phone.new_page()
                await page.goto(created["submit_url"])
                match = page.get_by_label("Number to match")
                assert await match.inner_text() == "47"
                size = await match.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
                assert size >= 48
                approve = page.get_by_role("button", name="Approved")
                box = await approve.bounding_box()
                assert box is not None and box["x"] + box["width"] <= 375
                assert await page.get_by_role("button", name="Denied").is_visible()
                async with page.expect_navigation():
                    await approve.click()
                assert await page.inner_text("#title") == "Approved"
            finally:
                await browser.close()
        poll = f"{served.url}/v1/interactions/{created['id']}?wait=5"
        async with session.get(poll, headers=h) as r:
            assert (await r.json())["status"] == "approved"
