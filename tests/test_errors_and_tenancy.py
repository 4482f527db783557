"""The contract's JSON error body on every error path, and tenant isolation on every route."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import MAX_BODY

from .helpers import ADMIN, assert_error

Client = TestClient[Any, Any]

TOTP_URI = "otpauth://totp/ACME:bot?secret=JBSWY3DPEHPK3PXP&issuer=ACME"


async def test_unknown_route_and_wrong_method(client: Client) -> None:
    """An unknown route is a JSON 404 and a wrong method a JSON 405 with Allow."""
    await assert_error(await client.get("/v2/nothing"), 404, "not_found")
    resp = await client.delete("/healthz")
    await assert_error(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["Allow"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "bad_input"),
        (b"", 400, "bad_input"),
        (b"[1, 2]", 400, "bad_input"),
        (b'"name"', 400, "bad_input"),
        (b"\xff\xfe\x00", 400, "bad_input"),
        (b'{"name": 5}', 422, "invalid"),
        (b'{"name": ""}', 422, "invalid"),
        (b'{"name": "x", "colour": "red"}', 422, "invalid"),
        (b'{"username": "x"}', 422, "invalid"),
        (b'{"name": "' + b"x" * 300 + b'"}', 422, "invalid"),
    ],
)
async def test_bad_bodies(
    client: Client, new_tenant: Any, body: bytes, status: int, code: str
) -> None:
    """Malformed JSON is 400; well-formed but invalid content is 422; both as JSON errors."""
    h = (await new_tenant())["headers"]
    resp = await client.post("/v1/credentials", data=body, headers=h)
    await assert_error(resp, status, code)


async def test_oversized_body(client: Client, new_tenant: Any) -> None:
    """A body over the limit is refused with a JSON 413, whatever its content."""
    h = (await new_tenant())["headers"]
    resp = await client.post("/v1/credentials", data=b"x" * (MAX_BODY + 1), headers=h)
    await assert_error(resp, 413, "too_large")


async def test_validation_messages_name_the_field(client: Client, new_tenant: Any) -> None:
    """A validation error says which field is wrong."""
    h = (await new_tenant())["headers"]
    body = await assert_error(
        await client.post("/v1/credentials", json={"name": "x", "colour": 1}, headers=h), 422
    )
    assert "colour" in body["error"]["message"]
    body = await assert_error(await client.post("/v1/credentials", json={}, headers=h), 422)
    assert "name" in body["error"]["message"]


async def test_bad_query_parameters(client: Client, new_tenant: Any) -> None:
    """Unparsable query values are 400, out-of-range ones 422."""
    h = (await new_tenant())["headers"]
    cred = await (await client.post("/v1/credentials", json={"name": "c"}, headers=h)).json()
    url = f"/v1/credentials/{cred['id']}/code"
    await assert_error(await client.get(f"{url}?wait=soon", headers=h), 400)
    await assert_error(await client.get(f"{url}?wait=301", headers=h), 422)
    await assert_error(await client.get(f"{url}?wait=-1", headers=h), 422)
    await assert_error(await client.get(f"{url}?wait=nan", headers=h), 422)
    await assert_error(await client.get(f"{url}?since=yesterday", headers=h), 400)
    await assert_error(await client.get(f"{url}?source=pigeon", headers=h), 422)


async def test_garbage_ids_are_not_found(client: Client, new_tenant: Any) -> None:
    """An id that cannot exist is a plain 404, never a 500."""
    h = (await new_tenant())["headers"]
    for bad in ("x", "cred_" + "a" * 100, "%00", "cred_AAAAAAAAAAAAAAAA", "' or 1=1 --"):
        await assert_error(await client.get(f"/v1/credentials/{bad}", headers=h), 404)


# Every route that takes a credential id, with a body that would succeed for the owner.
CREDENTIAL_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "", None),
    ("PATCH", "", {"name": "stolen"}),
    ("DELETE", "", None),
    ("GET", "/password", None),
    ("PUT", "/authenticator", {"otpauth_uri": TOTP_URI}),
    ("DELETE", "/authenticator", None),
    ("PUT", "/phone", {"phone_number": "+14155550199"}),
    ("DELETE", "/phone", None),
    ("GET", "/code", None),
    ("PUT", "/extraction", {"allowed_senders": ["example.com"]}),
    ("GET", "/extraction", None),
    ("POST", "/phone/provision", {"country": "US"}),
    ("POST", "/forwards", {"channel": "email", "to": "a@example.com"}),
    ("GET", "/forwards", None),
    ("GET", "/forwards/{forward_id}", None),
    ("DELETE", "/forwards/{forward_id}", None),
    ("POST", "/sms-devices", {"device_id": "phone-1"}),
    ("GET", "/sms-devices", None),
    ("DELETE", "/sms-devices/{device}", None),
    ("POST", "/interactions", {"prompt": "enter the code"}),
    ("GET", "/link", None),
    ("PUT", "/backup-codes", {"codes": ["1234-5678"]}),
    ("GET", "/backup-codes", None),
    ("POST", "/backup-codes/take", None),
    ("POST", "/logins", {}),
    ("PUT", "/skyvern", {"api_key": "sk-stolen"}),
    ("DELETE", "/skyvern", None),
]
#: Values for the second path id of nested routes (well-formed, unknown).
NESTED = {"{forward_id}": "fwd_aaaaaaaaaaaaaaaa", "{device}": "dev_aaaaaaaaaaaaaaaa"}


async def test_another_tenants_credential_is_not_found_on_every_route(
    client: Client, new_tenant: Any
) -> None:
    """Tenant B gets 404 on each of tenant A's credential routes, and A's data is unchanged."""
    a = (await new_tenant("a"))["headers"]
    b = (await new_tenant("b"))["headers"]
    cred = await (
        await client.post("/v1/credentials", json={"name": "mine", "password": "pw"}, headers=a)
    ).json()
    await client.put(
        f"/v1/credentials/{cred['id']}/authenticator", json={"otpauth_uri": TOTP_URI}, headers=a
    )
    registered = {
        (r.method, r.resource.canonical)
        for r in client.app.router.routes()
        if r.resource is not None and "/v1/credentials/{id}" in r.resource.canonical
    }
    covered = {(m, "/v1/credentials/{id}" + p) for m, p, _ in CREDENTIAL_ROUTES}
    assert registered <= covered, f"routes missing from this test: {registered - covered}"
    for method, suffix, body in CREDENTIAL_ROUTES:
        for name, value in NESTED.items():
            suffix = suffix.replace(name, value)
        resp = await client.request(
            method, f"/v1/credentials/{cred['id']}{suffix}", json=body, headers=b
        )
        await assert_error(resp, 404, "not_found")
    listed = await (await client.get("/v1/credentials", headers=b)).json()
    assert listed["credentials"] == []
    after = await (await client.get(f"/v1/credentials/{cred['id']}", headers=a)).json()
    assert after["name"] == "mine" and after["authenticator"] is not None
    assert after["phone_number"] is None
    pw = await (await client.get(f"/v1/credentials/{cred['id']}/password", headers=a)).json()
    assert pw == {"password": "pw"}


@pytest.mark.parametrize(
    "bad", ["nul\x00here", "two\nlines", "tab\there", "evil\u202etxt.exe", "\u2066x"]
)
async def test_names_hold_no_control_characters(client: Client, new_tenant: Any, bad: str) -> None:
    """NUL, newlines, tabs and bidi overrides in a name or username are a 422, on both engines
    (PostgreSQL cannot store NUL in text: it was a 500), and nothing is stored."""
    h = (await new_tenant())["headers"]
    for url, body in (
        ("/v1/credentials", {"name": bad}),
        ("/v1/credentials", {"name": "ok", "username": bad}),
        ("/v1/keys", {"name": bad, "role": "agent"}),
    ):
        await assert_error(await client.post(url, json=body, headers=h), 422, "invalid")
    resp = await client.post("/v1/tenants", json={"name": bad}, headers=ADMIN)
    await assert_error(resp, 422, "invalid")
    listed = await (await client.get("/v1/credentials", headers=h)).json()
    assert listed["credentials"] == []
    cred = await (await client.post("/v1/credentials", json={"name": "ok"}, headers=h)).json()
    resp = await client.patch(f"/v1/credentials/{cred['id']}", json={"name": bad}, headers=h)
    await assert_error(resp, 422, "invalid")
    # A plain name in any script is fine.
    resp = await client.post("/v1/credentials", json={"name": "Банк ☕ 銀行"}, headers=h)
    assert resp.status == 201
