"""The audit trail: one event per secret read and factor change, in one hash chain per tenant.

The chain is recomputed here from what ``GET /v1/audit`` returns, with
hashlib and json only, never with the code that writes it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import text

from gateway import cli
from gateway.app import Gateway
from gateway.services.inbound import Message
from gateway.store import audit as audit_rows

from .helpers import ADMIN_KEY, bearer, make_settings, opened, reset_postgres

Client = TestClient[Any, Any]

CANARY_PASSWORD = "canary-Passw0rd-7f3a"
CANARY_SECRET = "JBSWY3DPEHPK3PXPCANARYQQ"
CANARY_CODE = "739201"


def chain_ok(events: list[dict[str, Any]]) -> None:
    """Recompute the contract's chain: sha256(prev_hash + "\\n" + canonical JSON)."""
    prev = "0" * 64
    for n, event in enumerate(events, start=1):
        assert event["seq"] == n
        assert event["prev_hash"] == prev
        body = {k: v for k, v in event.items() if k != "hash"}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(prev.encode() + b"\n" + canonical.encode("utf-8")).hexdigest()
        assert event["hash"] == digest, f"seq {n}"
        prev = digest


async def all_events(client: Client, headers: dict[str, str], **params: Any) -> list[Any]:
    events: list[Any] = []
    after = 0
    while True:
        resp = await client.get("/v1/audit", params={"after": after, **params}, headers=headers)
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        events += page["events"]
        if page["next"] is None:
            return events
        after = page["next"]


async def deliver(gw: Gateway, inbox: str, code: str) -> None:
    route = await gw.services.inbound.route_for_inbox(inbox.partition("@")[0])
    assert route is not None
    message = Message(
        channel="email",
        sender="no-reply@service.example",
        sender_domain="service.example",
        subject="Your code",
        text=f"Your verification code is {code}.",
    )
    await gw.services.inbound.accept(message, [route])


async def _story(client: Client, gateway: Gateway, owner: dict[str, str]) -> dict[str, Any]:
    """Every kind of audited action, once, by an owner and an agent key."""
    resp = await client.post(
        "/v1/credentials", json={"name": "bank", "password": CANARY_PASSWORD}, headers=owner
    )
    cred = await resp.json()
    resp = await client.post("/v1/keys", json={"name": "bot", "role": "agent"}, headers=owner)
    agent_key = await resp.json()
    agent = bearer(agent_key["key"])
    base = f"/v1/credentials/{cred['id']}"
    assert (await client.get(f"{base}/password", headers=agent)).status == 200
    await deliver(gateway, cred["inbox"], CANARY_CODE)
    resp = await client.get(f"{base}/code", headers=agent)
    assert (await resp.json())["code"] == CANARY_CODE
    resp = await client.put(
        f"{base}/authenticator", json={"secret": CANARY_SECRET, "kind": "totp"}, headers=owner
    )
    assert resp.status == 200
    resp = await client.get(f"{base}/code", headers=agent)
    totp = (await resp.json())["code"]
    assert (await client.delete(f"{base}/authenticator", headers=owner)).status == 204
    resp = await client.put(f"{base}/phone", json={"phone_number": "+14155550123"}, headers=owner)
    assert resp.status == 200
    assert (await client.delete(f"{base}/phone", headers=owner)).status == 204
    resp = await client.post(f"{base}/interactions", json={}, headers=agent)
    interaction = await resp.json()
    resp = await client.post(
        f"/v1/interactions/{interaction['id']}/code", json={"code": "554433"}, headers=owner
    )
    assert resp.status == 204
    resp = await client.get(f"/v1/interactions/{interaction['id']}/code", headers=agent)
    assert (await resp.json())["code"] == "554433"
    assert (await client.delete(f"/v1/keys/{agent_key['id']}", headers=owner)).status == 204
    return {
        "cred": cred,
        "agent_key": agent_key,
        "interaction": interaction,
        "totp": totp,
        "submit_url": interaction["submit_url"],
    }


async def test_each_action_is_one_event_in_an_intact_chain(
    client: Client, gateway: Gateway, new_tenant: Any
) -> None:
    tenant = await new_tenant()
    owner = tenant["headers"]
    story = await _story(client, gateway, owner)
    events = await all_events(client, owner)
    chain_ok(events)
    owner_key = (await gateway.services.tenants.authenticate(tenant["api_key"])).key_id
    agent_key = story["agent_key"]["id"]
    cred_id = story["cred"]["id"]
    got = [(e["action"], e["actor"], e["credential_id"]) for e in events]
    assert got == [
        ("key.created", {"admin": True}, None),
        ("credential.created", {"key_id": owner_key}, cred_id),
        ("key.created", {"key_id": owner_key}, None),
        ("password.read", {"key_id": agent_key}, cred_id),
        ("code.read", {"key_id": agent_key}, cred_id),
        ("authenticator.set", {"key_id": owner_key}, cred_id),
        ("authenticator.read", {"key_id": agent_key}, cred_id),
        ("authenticator.removed", {"key_id": owner_key}, cred_id),
        ("phone.set", {"key_id": owner_key}, cred_id),
        ("phone.removed", {"key_id": owner_key}, cred_id),
        ("interaction.answered", {"key_id": owner_key}, cred_id),
        ("code.read", {"key_id": agent_key}, cred_id),
        ("key.revoked", {"key_id": owner_key}, None),
    ]
    assert events[2]["object_id"] == agent_key == events[-1]["object_id"]
    assert events[10]["object_id"] == story["interaction"]["id"]
    assert {e["outcome"] for e in events} == {"ok"}
    # Filters and paging.
    only = await all_events(client, owner, action="code.read")
    assert [e["seq"] for e in only] == [5, 12]
    page = await (await client.get("/v1/audit?after=3&limit=2", headers=owner)).json()
    assert [e["seq"] for e in page["events"]] == [4, 5] and page["next"] == 5
    by_cred = await all_events(client, owner, credential_id=cred_id)
    assert len(by_cred) == 10
    for wrong in ("nothing", ""):
        resp = await client.get(f"/v1/audit?action={wrong}", headers=owner)
        assert resp.status == 422, wrong
    # Another tenant's chain is its own.
    other = await new_tenant("other")
    theirs = await all_events(client, other["headers"])
    assert [e["action"] for e in theirs] == ["key.created"]
    chain_ok(theirs)


async def test_a_person_answering_by_the_submit_link_is_the_actor(
    client: Client, new_tenant: Any
) -> None:
    owner = (await new_tenant())["headers"]
    cred = await (await client.post("/v1/credentials", json={"name": "c"}, headers=owner)).json()
    resp = await client.post(f"/v1/credentials/{cred['id']}/interactions", json={}, headers=owner)
    interaction = await resp.json()
    path = "/submit/" + interaction["submit_url"].rsplit("/submit/", 1)[1]
    assert (await client.post(path, json={"code": "123456"})).status == 204
    events = await all_events(client, owner)
    assert events[-1]["action"] == "interaction.answered"
    assert events[-1]["actor"] == {"submit_link": interaction["id"]}


async def test_no_event_holds_a_secret(
    client: Client, gateway: Gateway, new_tenant: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Canaries: the password, the TOTP secret and its code, a received code, a person's code,
    the API keys and the submit link appear nowhere in the trail: API, export or raw rows."""
    tenant = await new_tenant()
    story = await _story(client, gateway, tenant["headers"])
    canaries = [
        CANARY_PASSWORD,
        CANARY_SECRET,
        CANARY_CODE,
        story["totp"],
        "554433",
        tenant["api_key"],
        story["agent_key"]["key"],
        story["submit_url"].rsplit("/", 1)[1],
        "Your verification code",
    ]
    shown = await (await client.get("/v1/audit", headers=tenant["headers"])).text()
    async with gateway.db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM audit_events"))).all()
        heads = (await conn.execute(text("SELECT * FROM audit_heads"))).all()
    raw = repr(rows) + repr(heads)
    exported = [e async for e in gateway.services.audit.export()]
    assert len(rows) == len(exported) >= 13
    for canary in canaries:
        assert canary not in shown
        assert canary not in raw
        assert canary not in json.dumps(exported)


async def test_a_code_and_its_event_commit_together(
    client: Client, gateway: Gateway, new_tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the event cannot be written, the code is not handed out and stays takeable."""
    owner = (await new_tenant())["headers"]
    cred = await (await client.post("/v1/credentials", json={"name": "c"}, headers=owner)).json()
    await deliver(gateway, cred["inbox"], "246810")
    real = audit_rows.link  # every event goes through it, however its head was taken

    async def broken(conn: Any, tenant_id: str, head: Any, entries: Any) -> None:
        await real(conn, tenant_id, head, entries)
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(audit_rows, "link", broken)
    resp = await client.get(f"/v1/credentials/{cred['id']}/code", headers=owner)
    assert resp.status == 500
    assert "246810" not in await resp.text()
    monkeypatch.setattr(audit_rows, "link", real)
    resp = await client.get(f"/v1/credentials/{cred['id']}/code", headers=owner)
    assert (await resp.json())["code"] == "246810"
    events = await all_events(client, owner)
    assert [e["action"] for e in events].count("code.read") == 1
    chain_ok(events)


async def test_a_totp_code_is_not_handed_out_when_its_event_cannot_be_written(
    client: Client, gateway: Gateway, new_tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = (await new_tenant())["headers"]
    cred = await (await client.post("/v1/credentials", json={"name": "c"}, headers=owner)).json()
    url = f"/v1/credentials/{cred['id']}"
    await client.put(f"{url}/authenticator", json={"secret": CANARY_SECRET, "kind": "totp"},
                     headers=owner)  # fmt: skip

    async def broken(conn: Any, entries: Any) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(audit_rows, "append", broken)
    gateway.services.audit._committer._write = broken  # the committer holds the function
    resp = await client.get(f"{url}/code", headers=owner)
    assert resp.status == 503
    assert "code" not in await resp.json()


async def test_many_concurrent_reads_keep_one_ordered_chain(
    client: Client, gateway: Gateway, new_tenant: Any
) -> None:
    """200 TOTP and password reads at once (grouped commits): every one recorded, chain intact."""
    tenant = await new_tenant()
    owner = tenant["headers"]
    body = {"name": "c", "password": "pw"}
    cred = await (await client.post("/v1/credentials", json=body, headers=owner)).json()
    url = f"/v1/credentials/{cred['id']}"
    await client.put(f"{url}/authenticator", json={"secret": CANARY_SECRET, "kind": "totp"},
                     headers=owner)  # fmt: skip
    paths = [f"{url}/code", f"{url}/password"] * 100
    statuses = await asyncio.gather(*(client.get(p, headers=owner) for p in paths))
    assert {r.status for r in statuses} == {200}
    events = await all_events(client, owner)
    chain_ok(events)
    actions = [e["action"] for e in events]
    assert actions.count("authenticator.read") == 100 and actions.count("password.read") == 100


async def test_auditing_off_records_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, OTPGATE_AUDIT="0")
    async with opened(settings) as gw:
        tenant = await gw.services.tenants.create("acme")
        cred = await gw.services.credentials.create(
            tenant.id, name="c", username=None, password="pw"
        )
        assert await gw.services.credentials.password(tenant.id, cred.id) == "pw"
        page = await gw.services.audit.page(tenant.id)
        assert page.events == []


def _cli_env(monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path) -> None:
    monkeypatch.setenv("OTPGATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OTPGATE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("OTPGATE_ADMIN_KEY", ADMIN_KEY)


async def _tamper(gateway: Gateway, sql: str) -> None:
    async with gateway.db.engine.begin() as conn:
        await conn.execute(text(sql))


@pytest.mark.parametrize(
    ("sql", "seq", "reason"),
    [
        ("UPDATE audit_events SET object_id = 'key_aaaaaaaaaaaaaaaa' WHERE seq = 4", 4, "hash"),
        ("UPDATE audit_events SET action = 'code.read' WHERE seq = 3", 3, "hash"),
        ("DELETE FROM audit_events WHERE seq = 6", 6, "missing"),
        ("DELETE FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)", 13,
         "removed"),
    ],
)  # fmt: skip
async def test_audit_verify_names_the_first_broken_seq(
    client: Client,
    gateway: Gateway,
    settings: Any,
    new_tenant: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sql: str,
    seq: int,
    reason: str,
) -> None:
    tenant = await new_tenant()
    await _story(client, gateway, tenant["headers"])
    _cli_env(monkeypatch, settings, tmp_path)
    assert await asyncio.to_thread(cli.main, ["audit", "verify"]) == 0
    assert "1 chain(s), 13 event(s): intact" in capsys.readouterr().out
    assert await asyncio.to_thread(cli.main, ["audit", "export"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, 14))
    assert {e["tenant_id"] for e in lines} == {tenant["id"]}
    chain_ok([{k: v for k, v in e.items() if k != "tenant_id"} for e in lines])

    await _tamper(gateway, sql)
    assert await asyncio.to_thread(cli.main, ["audit", "verify"]) == 1
    err = capsys.readouterr().err
    assert f"breaks at seq {seq}" in err and tenant["id"] in err
    assert reason in err


async def test_two_replicas_append_to_one_chain_in_order(
    tmp_path: Path, postgres_database: str
) -> None:
    """Reads on two PostgreSQL replicas at once: one chain, no gap, no fork."""
    await reset_postgres(postgres_database)
    async with (
        opened(make_settings(tmp_path, postgres_database)) as a,
        opened(make_settings(tmp_path, postgres_database)) as b,
    ):
        tenant = await a.services.tenants.create("acme")
        cred = await a.services.credentials.create(
            tenant.id, name="c", username=None, password="pw"
        )
        reads = [gw.services.credentials.password(tenant.id, cred.id) for gw in (a, b) * 60]
        assert set(await asyncio.gather(*reads)) == {"pw"}
        verified = await a.services.audit.verify()
        assert verified.broken == [] and verified.events == 122
        events = [e async for e in a.services.audit.export(tenant.id)]
        chain_ok([{k: v for k, v in e.items() if k != "tenant_id"} for e in events])
