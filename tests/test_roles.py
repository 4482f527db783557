"""API keys with roles: every role against every route, credential limits, expiry, revocation.

The expectations here are written down independently of ``gateway.roles``:
one line per route saying which roles may call it.  The table test walks the
application's own route table, so a route added without a line here fails
until someone decides who may call it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from alembic import command
from sqlalchemy import text

from gateway.api.auth import AUTH_FAILURES
from gateway.api.openapi import ROUTES
from gateway.app import Gateway
from gateway.errors import Unauthenticated
from gateway.store import db as store_db
from gateway.store.db import Database

from .helpers import ADMIN, bearer, make_settings, opened, replica_pair

Client = TestClient[Any, Any]

O, M, A = "owner", "manager", "agent"  # noqa: E741
EVERY = {O, M, A}
#: Who may call each route (besides the admin key, which may call only /v1/tenants).
WHO: dict[tuple[str, str], set[str]] = {
    ("POST", "/v1/tenants"): set(),
    ("POST", "/v1/keys"): {O},
    ("GET", "/v1/keys"): {O},
    ("DELETE", "/v1/keys/{id}"): {O},
    ("GET", "/v1/audit"): {O},
    ("POST", "/v1/credentials"): {O, M},
    ("POST", "/v1/credentials/import"): {O, M},
    ("GET", "/v1/credentials"): EVERY,
    ("GET", "/v1/credentials/{id}"): EVERY,
    ("PATCH", "/v1/credentials/{id}"): {O, M},
    ("DELETE", "/v1/credentials/{id}"): {O, M},
    ("GET", "/v1/credentials/{id}/password"): {O, A},
    ("GET", "/v1/credentials/{id}/code"): {O, A},
    ("GET", "/v1/credentials/{id}/link"): {O, A},
    ("PUT", "/v1/credentials/{id}/backup-codes"): {O, M},
    ("GET", "/v1/credentials/{id}/backup-codes"): EVERY,
    ("POST", "/v1/credentials/{id}/backup-codes/take"): {O, A},
    ("POST", "/v1/credentials/{id}/logins"): EVERY,
    ("PUT", "/v1/credentials/{id}/skyvern"): {O, M},
    ("DELETE", "/v1/credentials/{id}/skyvern"): {O, M},
    ("GET", "/v1/logins/{id}"): EVERY,
    ("GET", "/v1/logins/{id}/code"): {O, A},
    ("GET", "/v1/logins/{id}/link"): {O, A},
    ("POST", "/v1/logins/{id}/reject"): EVERY,
    ("POST", "/v1/logins/{id}/finish"): EVERY,
    ("PUT", "/v1/credentials/{id}/authenticator"): {O, M},
    ("DELETE", "/v1/credentials/{id}/authenticator"): {O, M},
    ("PUT", "/v1/credentials/{id}/phone"): {O, M},
    ("DELETE", "/v1/credentials/{id}/phone"): {O, M},
    ("POST", "/v1/credentials/{id}/phone/provision"): {O, M},
    ("PUT", "/v1/credentials/{id}/extraction"): {O, M},
    ("GET", "/v1/credentials/{id}/extraction"): EVERY,
    ("POST", "/v1/credentials/{id}/forwards"): {O, M},
    ("GET", "/v1/credentials/{id}/forwards"): EVERY,
    ("GET", "/v1/credentials/{id}/forwards/{forward_id}"): EVERY,
    ("DELETE", "/v1/credentials/{id}/forwards/{forward_id}"): {O, M},
    ("POST", "/v1/credentials/{id}/sms-devices"): {O, M},
    ("GET", "/v1/credentials/{id}/sms-devices"): EVERY,
    ("DELETE", "/v1/credentials/{id}/sms-devices/{device}"): {O, M},
    ("POST", "/v1/credentials/{id}/interactions"): EVERY,
    ("GET", "/v1/interactions/{id}"): EVERY,
    ("POST", "/v1/interactions/{id}/code"): EVERY,
    ("GET", "/v1/interactions/{id}/code"): {O, A},
    ("POST", "/v1/interactions/{id}/decision"): EVERY,
    ("POST", "/v1/webhooks"): {O, M},
    ("GET", "/v1/webhooks"): EVERY,
    ("GET", "/v1/webhooks/{id}"): EVERY,
    ("DELETE", "/v1/webhooks/{id}"): {O, M},
    ("POST", "/v1/webhooks/{id}/rotate"): {O, M},
    ("POST", "/v1/webhooks/{id}/enable"): {O, M},
}
#: Well-formed ids of nothing: an allowed caller gets past the guard and then a 404
#: (or a 422 for the empty body), a refused one a 403 before any lookup.
UNKNOWN = {
    "id": "cred_aaaaaaaaaaaaaaaa",
    "forward_id": "fwd_aaaaaaaaaaaaaaaa",
    "device": "dev_aaaaaaaaaaaaaaaa",
}


async def _key(client: Client, owner: dict[str, str], role: str, **extra: Any) -> dict[str, Any]:
    resp = await client.post("/v1/keys", json={"name": f"{role} key", "role": role, **extra},
                             headers=owner)  # fmt: skip
    assert resp.status == 201, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def _authenticated_routes(app: Any) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in app[ROUTES] if r.operation.auth is not None]


async def test_every_role_against_every_route(client: Client, new_tenant: Any) -> None:
    """Each role gets past the guard exactly on the routes the table gives it, and 403 elsewhere."""
    owner = (await new_tenant())["headers"]
    keys = {O: owner}
    for role in (M, A):
        keys[role] = bearer((await _key(client, owner, role))["key"])
    routes = _authenticated_routes(client.server.app)
    assert set(routes) == set(WHO), "a route has no line in WHO (or WHO names a gone route)"
    # One bad key per route is more than an address's allowance of failures: let a
    # minute pass on the limiter's clock at each look, so the bad key keeps its 401.
    failures = client.server.app[AUTH_FAILURES]
    minutes = itertools.count(start=failures.clock(), step=60.0)
    failures.clock = lambda: next(minutes)
    assert all(path.startswith("/v1/") for _, path in routes)
    checked = 0
    for method, path in routes:
        url = path.format(**UNKNOWN)
        for role, headers in [*keys.items(), ("admin", ADMIN)]:
            resp = await client.request(method, url, json={}, headers=headers)
            allowed = path == "/v1/tenants" if role == "admin" else role in WHO[(method, path)]
            if allowed:
                assert resp.status not in (401, 403), (method, path, role, await resp.text())
            else:
                assert resp.status == 403, (method, path, role, resp.status)
                body = await resp.json()
                assert body["error"]["code"] == "forbidden"
            checked += 1
        # No key at all, and a bad one: 401 everywhere.
        assert (await client.request(method, url)).status == 401
        bad = bearer("otpg_" + "x" * 43)
        assert (await client.request(method, url, headers=bad)).status == 401
    assert checked == len(routes) * 4


async def test_the_document_names_each_routes_roles(client: Client) -> None:
    doc = await (await client.get("/openapi.json")).json()
    op = doc["paths"]["/v1/credentials/{id}/password"]["get"]
    assert "owner or agent" in op["description"]
    assert "403" in op["responses"]


async def test_a_key_limited_to_credentials_sees_only_them(client: Client, new_tenant: Any) -> None:
    owner = (await new_tenant())["headers"]
    ids = []
    for name in ("mine", "other"):
        resp = await client.post("/v1/credentials", json={"name": name, "password": "pw"},
                                 headers=owner)  # fmt: skip
        ids.append((await resp.json())["id"])
    mine, other = ids
    agent = bearer((await _key(client, owner, A, credential_ids=[mine]))["key"])
    listed = await (await client.get("/v1/credentials", headers=agent)).json()
    assert [c["id"] for c in listed["credentials"]] == [mine]
    assert (await client.get(f"/v1/credentials/{mine}/password", headers=agent)).status == 200
    for url in (f"/v1/credentials/{other}", f"/v1/credentials/{other}/password",
                f"/v1/credentials/{other}/code"):  # fmt: skip
        resp = await client.get(url, headers=agent)
        assert resp.status == 404, url
    # An interaction of the other credential is as unknown as the credential.
    resp = await client.post(f"/v1/credentials/{other}/interactions", json={}, headers=owner)
    theirs = (await resp.json())["id"]
    assert (await client.get(f"/v1/interactions/{theirs}", headers=agent)).status == 404
    resp = await client.post(f"/v1/interactions/{theirs}/code", json={"code": "1"}, headers=agent)
    assert resp.status == 404
    resp = await client.post(f"/v1/credentials/{mine}/interactions", json={}, headers=owner)
    own = (await resp.json())["id"]
    assert (await client.get(f"/v1/interactions/{own}", headers=agent)).status == 200
    # Routes that reach the whole tenant are refused.
    assert (await client.get("/v1/webhooks", headers=agent)).status == 403
    # A limited manager may not create credentials it could then not see.
    manager = bearer((await _key(client, owner, M, credential_ids=[mine]))["key"])
    resp = await client.post("/v1/credentials", json={"name": "x"}, headers=manager)
    assert resp.status == 403


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "k", "role": "root"}, 422),
        ({"name": "", "role": "agent"}, 422),
        ({"name": "k", "role": "agent", "credential_ids": []}, 422),
        ({"name": "k", "role": "owner", "credential_ids": ["cred_aaaaaaaaaaaaaaaa"]}, 422),
        ({"name": "k", "role": "agent", "credential_ids": ["cred_aaaaaaaaaaaaaaaa"]}, 422),
        ({"name": "k", "role": "agent", "expires_at": "yesterday"}, 422),
        ({"name": "k", "role": "agent", "expires_at": "2001-01-01T00:00:00Z"}, 422),
        ({"name": "k", "role": "agent", "key": "chosen"}, 422),
    ],
)
async def test_bad_keys_are_refused(
    client: Client, new_tenant: Any, body: dict[str, Any], status: int
) -> None:
    owner = (await new_tenant())["headers"]
    resp = await client.post("/v1/keys", json=body, headers=owner)
    assert resp.status == status, await resp.text()
    assert set((await resp.json())["error"]) == {"code", "message"}
    listed = await (await client.get("/v1/keys", headers=owner)).json()
    assert len(listed["keys"]) == 1  # nothing was stored


async def test_keys_are_listed_without_the_key_and_revoked(
    client: Client, gateway: Gateway, new_tenant: Any
) -> None:
    tenant = await new_tenant()
    owner = tenant["headers"]
    listed = await (await client.get("/v1/keys", headers=owner)).json()
    (first,) = listed["keys"]
    assert first["role"] == "owner"  # the tenant's first key
    new = await _key(client, owner, A, expires_at="2999-01-01T00:00:00Z")
    assert new["key"].startswith("otpg_")
    assert new["expires_at"].startswith("2999-01-01T00:00:00")
    agent = bearer(new["key"])
    assert (await client.get("/v1/credentials", headers=agent)).status == 200  # cached now
    listed = await (await client.get("/v1/keys", headers=owner)).json()
    assert {k["id"] for k in listed["keys"]} == {first["id"], new["id"]}
    assert all("key" not in k for k in listed["keys"])
    assert new["key"] not in await (await client.get("/v1/keys", headers=owner)).text()
    # last_used_at is written in batches, not by the request.
    await gateway.services.tenants.flush_last_used()
    listed = await (await client.get("/v1/keys", headers=owner)).json()
    used = {k["id"]: k["last_used_at"] for k in listed["keys"]}
    assert used[new["id"]] is not None and used[first["id"]] is not None

    assert (await client.delete(f"/v1/keys/{new['id']}", headers=owner)).status == 204
    resp = await client.get("/v1/credentials", headers=agent)
    assert resp.status == 401
    assert (await client.delete(f"/v1/keys/{new['id']}", headers=owner)).status == 404
    # The last owner key cannot go: nobody could manage the tenant's keys after it.
    resp = await client.delete(f"/v1/keys/{first['id']}", headers=owner)
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "last_owner_key"
    # Another tenant's key is unknown here.
    other = (await new_tenant("other"))["headers"]
    assert (await client.delete(f"/v1/keys/{first['id']}", headers=other)).status == 404


async def test_an_expired_key_gets_401(client: Client, new_tenant: Any) -> None:
    owner = (await new_tenant())["headers"]
    soon = datetime.fromtimestamp(time.time() + 1.0, UTC).isoformat()
    agent = bearer((await _key(client, owner, A, expires_at=soon))["key"])
    assert (await client.get("/v1/credentials", headers=agent)).status == 200
    await asyncio.sleep(1.1)
    resp = await client.get("/v1/credentials", headers=agent)
    assert resp.status == 401
    assert "expired" in (await resp.json())["error"]["message"]


def _downgrade(conn: Any, revision: str) -> None:
    cfg = store_db._alembic_config()
    cfg.attributes["connection"] = conn
    command.downgrade(cfg, revision)


async def test_keys_made_before_roles_keep_working_as_owner_keys(
    tmp_path: Path, database_url: str
) -> None:
    """A store at revision 0005 (tenant keys with the role ``tenant``) upgrades to owner keys."""
    settings = make_settings(tmp_path, database_url)
    async with opened(settings) as gw:
        tenant = await gw.services.tenants.create("old")
    db = await Database.open(settings.database_url, migrate=False)
    async with db.engine.connect() as conn:
        await conn.run_sync(_downgrade, "0005")
        await conn.commit()
        roles = (await conn.execute(text("SELECT role FROM api_keys"))).scalars().all()
    await db.close()
    assert roles == ["tenant"]

    async with opened(settings) as gw:
        principal = await gw.services.tenants.authenticate(tenant.api_key)
        assert principal.role == "owner" and principal.tenant_id == tenant.id
        (listed,) = await gw.services.apikeys.list(tenant.id)
        assert listed.role == "owner"


async def test_revocation_reaches_another_replica_within_a_second(
    tmp_path: Path, postgres_database: str
) -> None:
    """Replica B has the key cached; replica A revokes it; B answers 401 within 1 s."""
    async with replica_pair(tmp_path, postgres_database) as (a, b):
        tenant = await a.services.tenants.create("acme")
        owner = await a.services.tenants.authenticate(tenant.api_key)
        new = await a.services.apikeys.create(tenant.id, owner.actor, name="bot", role="agent")
        for _ in range(3):  # cached on B now, for longer than a second
            assert (await b.services.tenants.authenticate(new.key)).key_id == new.id
        await a.services.apikeys.revoke(tenant.id, owner.actor, new.id)
        revoked = time.monotonic()
        while True:
            try:
                await b.services.tenants.authenticate(new.key)
            except Unauthenticated:
                break
            assert time.monotonic() - revoked < 1.0, "replica B still took the revoked key"
            await asyncio.sleep(0.01)
        took = time.monotonic() - revoked
        print(f"revocation reached the other replica in {took * 1000:.0f} ms")
        # The owner key, untouched, still works on both.
        for gw in (a, b):
            assert (await gw.services.tenants.authenticate(tenant.api_key)).role == "owner"
