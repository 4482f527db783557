"""Tenants and credentials through the HTTP API, on each database engine."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from .helpers import ADMIN, bearer

Client = TestClient[Any, Any]


async def test_tenant_creation_needs_the_admin_key(client: Client, new_tenant: Any) -> None:
    """Only the admin key creates tenants; a tenant key gets 403 and no key 401."""
    tenant = await new_tenant()
    assert tenant["api_key"].startswith("otpg_") and len(tenant["api_key"]) >= 5 + 43
    resp = await client.post("/v1/tenants", json={"name": "x"}, headers=tenant["headers"])
    assert resp.status == 403
    resp = await client.post("/v1/tenants", json={"name": "x"})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    resp = await client.post("/v1/tenants", json={"name": "x"}, headers=bearer("otpg_nope"))
    assert resp.status == 401


async def test_admin_key_cannot_act_as_a_tenant(client: Client) -> None:
    """The admin key manages tenants but owns no credentials: 403 on tenant routes."""
    resp = await client.get("/v1/credentials", headers=ADMIN)
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "forbidden"


async def test_credential_lifecycle(client: Client, new_tenant: Any) -> None:
    """Create, read, list, patch and delete a credential as the contract describes."""
    h = (await new_tenant())["headers"]
    resp = await client.post(
        "/v1/credentials",
        json={"name": "GitHub work", "username": "bot@example.com", "password": "hunter2!"},
        headers=h,
    )
    assert resp.status == 201
    cred = await resp.json()
    assert set(cred) >= {"id", "name", "username", "inbox", "phone_number"}
    assert cred["inbox"].endswith("@inbox.localhost")
    assert cred["inbox"].startswith("github-work-")
    assert cred["phone_number"] is None
    assert "password" not in cred and cred["has_password"] is True

    got = await (await client.get(f"/v1/credentials/{cred['id']}", headers=h)).json()
    assert got == cred
    listed = await (await client.get("/v1/credentials", headers=h)).json()
    assert [c["id"] for c in listed["credentials"]] == [cred["id"]]
    assert "hunter2!" not in str(listed)

    pw = await client.get(f"/v1/credentials/{cred['id']}/password", headers=h)
    assert pw.status == 200 and await pw.json() == {"password": "hunter2!"}
    assert pw.headers["Cache-Control"] == "no-store"

    resp = await client.patch(
        f"/v1/credentials/{cred['id']}", json={"name": "GH", "password": "n3w"}, headers=h
    )
    assert resp.status == 200
    patched = await resp.json()
    assert patched["name"] == "GH" and patched["username"] == "bot@example.com"
    assert patched["inbox"] == cred["inbox"]
    pw = await client.get(f"/v1/credentials/{cred['id']}/password", headers=h)
    assert await pw.json() == {"password": "n3w"}

    resp = await client.patch(f"/v1/credentials/{cred['id']}", json={"password": None}, headers=h)
    assert (await resp.json())["has_password"] is False
    pw = await client.get(f"/v1/credentials/{cred['id']}/password", headers=h)
    assert await pw.json() == {"password": None}

    assert (await client.delete(f"/v1/credentials/{cred['id']}", headers=h)).status == 204
    assert (await client.get(f"/v1/credentials/{cred['id']}", headers=h)).status == 404
    assert (await client.delete(f"/v1/credentials/{cred['id']}", headers=h)).status == 404


async def test_inboxes_are_unique(client: Client, new_tenant: Any) -> None:
    """Two credentials with the same name still get different inbox addresses."""
    h = (await new_tenant())["headers"]
    inboxes = set()
    for _ in range(5):
        resp = await client.post("/v1/credentials", json={"name": "same"}, headers=h)
        inboxes.add((await resp.json())["inbox"])
    assert len(inboxes) == 5


async def test_list_pages(client: Client, new_tenant: Any) -> None:
    """Listing pages through credentials with limit and the returned 'next' cursor."""
    h = (await new_tenant())["headers"]
    made = set()
    for i in range(5):
        resp = await client.post("/v1/credentials", json={"name": f"c{i}"}, headers=h)
        made.add((await resp.json())["id"])
    seen: list[str] = []
    after = ""
    while True:
        page = await (await client.get(f"/v1/credentials?limit=2&after={after}", headers=h)).json()
        seen += [c["id"] for c in page["credentials"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert sorted(seen) == sorted(made)


async def test_phone_numbers(client: Client, new_tenant: Any) -> None:
    """A phone number must be E.164 and belongs to at most one credential."""
    h = (await new_tenant("a"))["headers"]
    h2 = (await new_tenant("b"))["headers"]
    a = await (await client.post("/v1/credentials", json={"name": "a"}, headers=h)).json()
    b = await (await client.post("/v1/credentials", json={"name": "b"}, headers=h2)).json()
    url = f"/v1/credentials/{a['id']}/phone"
    resp = await client.put(url, json={"phone_number": "+14155550100"}, headers=h)
    assert resp.status == 200 and (await resp.json())["phone_number"] == "+14155550100"
    # Setting the same number again on the same credential is fine.
    assert (await client.put(url, json={"phone_number": "+14155550100"}, headers=h)).status == 200
    resp = await client.put(
        f"/v1/credentials/{b['id']}/phone", json={"phone_number": "+14155550100"}, headers=h2
    )
    assert resp.status == 409
    for bad in ("4155550100", "+0123456789", "+1 415 555 0100", "+1415555010012345"):
        resp = await client.put(url, json={"phone_number": bad}, headers=h)
        assert resp.status == 422, bad
    assert (await client.delete(url, headers=h)).status == 204
    resp = await client.put(
        f"/v1/credentials/{b['id']}/phone", json={"phone_number": "+14155550100"}, headers=h2
    )
    assert resp.status == 200
