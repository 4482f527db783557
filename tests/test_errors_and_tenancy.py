"""The contract's JSON error body on every error path, and tenant isolation on every route."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.api.auth import AUTH_FAILURES, FAILURES_PER_MINUTE
from gateway.api.openapi import ROUTES
from gateway.app import MAX_BODY, Gateway
from gateway.roles import Access

from .helpers import ADMIN, assert_error, assert_raw_error, bearer, raw_http

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
    h = (await new_tenant())["headers"] | {"Content-Type": "application/json"}
    resp = await client.post("/v1/credentials", data=body, headers=h)
    await assert_error(resp, status, code)


async def test_oversized_body(client: Client, new_tenant: Any) -> None:
    """A body over the limit is refused with a JSON 413, whatever its content."""
    h = (await new_tenant())["headers"] | {"Content-Type": "application/json"}
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
    for odd in ("nan", "inf", "1_0", "%D9%A1", "%EF%BC%95", "1e1", "+5", "%205", "0x1", "5."):
        await assert_error(await client.get(f"{url}?wait={odd}", headers=h), 400, "bad_input")
    await assert_error(await client.get("/v1/audit?limit=1_0", headers=h), 400, "bad_input")
    assert (await client.get(f"{url}?wait=0.5", headers=h)).status == 204
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


async def test_names_are_at_most_200_characters_as_sent(client: Client, new_tenant: Any) -> None:
    """A name is stripped, but its limit is the document's ``maxLength`` of what is sent: 200
    characters and a space around them are a 422 (Schemathesis found them accepted)."""
    h = (await new_tenant())["headers"]
    over = " " + "n" * 200
    for url, body, headers in (
        ("/v1/credentials", {"name": over}, h),
        ("/v1/keys", {"name": over, "role": "agent"}, h),
        ("/v1/tenants", {"name": over}, ADMIN),
    ):
        await assert_error(await client.post(url, json=body, headers=headers), 422, "invalid")
    resp = await client.post("/v1/credentials", json={"name": " " + "n" * 199}, headers=h)
    assert resp.status == 201 and (await resp.json())["name"] == "n" * 199


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing was logged at ERROR or with a traceback."""
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]


async def test_deeply_nested_json_is_a_400_on_every_json_route(
    client: Client, gateway: Gateway, new_tenant: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """JSON nested past the parser's recursion limit is a 400 on every route that takes JSON,
    never a 500 with a RecursionError in the log."""
    h = (await new_tenant())["headers"]
    cred = await (await client.post("/v1/credentials", json={"name": "c"}, headers=h)).json()
    made = await client.post(f"/v1/credentials/{cred['id']}/interactions", json={}, headers=h)
    interaction = await made.json()
    token = interaction["submit_url"].rsplit("/", 1)[1]
    values = {
        "{id}": cred["id"],
        "{token}": token,
        "{forward_id}": "fwd_aaaaaaaaaaaaaaaa",
        "{device}": "dev_aaaaaaaaaaaaaaaa",
    }
    deep = b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    routes = [r for r in gateway.app[ROUTES] if r.operation.body or r.operation.form]
    assert len(routes) > 15
    caplog.set_level(logging.INFO)
    for r in routes:
        path = r.path
        if path.startswith("/v1/interactions/{id}"):
            path = path.replace("{id}", interaction["id"])
        for placeholder, value in values.items():
            path = path.replace(placeholder, value)
        headers = dict(ADMIN if r.operation.auth == Access.ADMIN else h)
        headers["Content-Type"] = "application/json"
        resp = await client.request(r.method, path, data=deep, headers=headers)
        assert 400 <= resp.status < 500, (r.method, r.path, resp.status, await resp.text())
        await assert_error(resp, resp.status)
    _no_traceback(caplog)


async def test_android_webhook_refuses_bad_headers_and_deep_json(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """/sms/android: nested JSON is 400; a non-ASCII X-Signature and a non-numeric, non-ASCII or
    non-UTF-8 X-Timestamp are 403; none of them a 500 or a traceback."""
    caplog.set_level(logging.INFO)
    stamp = str(int(time.time())).encode()
    deep = b"[" * 8000 + b"]" * 8000  # under the route's 16 KiB cap
    sig = b"0" * 64
    port = client.port
    assert port is not None
    cases = [
        (sig, stamp, deep, 400),
        ("é".encode() * 32, stamp, b"{}", 403),
        (b"\xff" * 64, stamp, b"{}", 403),
        (sig, b"soon", b"{}", 403),
        (sig, "١٧٦٤٠٠٠٠٠٠".encode(), b"{}", 403),  # Arabic-Indic digits
        (sig, b"\xff\xfe", b"{}", 403),
        (sig, b"1" * 40, b"{}", 403),
    ]
    for signature, timestamp, body, status in cases:
        head = (
            b"POST /sms/android HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-Signature: " + signature + b"\r\nX-Timestamp: " + timestamp + b"\r\n"
            b"Content-Length: " + str(len(body)).encode()
        )
        assert_raw_error(await raw_http(port, head, body), status)
    _no_traceback(caplog)


async def test_non_utf8_authorization_is_a_401(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Bytes that are not UTF-8 (or not ASCII) in Authorization are a 401, never a 500."""
    caplog.set_level(logging.INFO)
    port = client.port
    assert port is not None
    for value in (b"Bearer \xff\xfe\xfd", b"Bearer otpg_\xc3\xa9t\xc3\xa9", b"\xff \xff"):
        head = b"GET /v1/credentials HTTP/1.1\r\nHost: x\r\nAuthorization: " + value
        assert_raw_error(await raw_http(port, head), 401, "unauthenticated")
    _no_traceback(caplog)


async def test_guessing_api_keys_is_limited_but_valid_keys_never_wait(
    client: Client, new_tenant: Any
) -> None:
    """Wrong keys from one address meet a 429 with Retry-After after a short burst; a valid key
    is never slowed, neither by its own calls nor by the guesses made from its address, and
    not even when it was never used before."""
    failures = client.server.app[AUTH_FAILURES]
    failures.hold = 0.0  # the hold itself is pinned by the next test
    h = (await new_tenant())["headers"]
    for _ in range(300):
        assert (await client.get("/v1/credentials", headers=h)).status == 200
    statuses = []
    for i in range(200):
        resp = await client.get("/v1/credentials", headers=bearer(f"otpg_guess{i:04d}"))
        statuses.append(resp.status)
        if resp.status == 429:
            body = await assert_error(resp, 429, "too_many_failures")
            assert "Bearer" not in body["error"]["message"]
            assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert statuses[:FAILURES_PER_MINUTE] == [401] * FAILURES_PER_MINUTE
    assert set(statuses[FAILURES_PER_MINUTE + 1 :]) == {429}
    for _ in range(50):
        assert (await client.get("/v1/credentials", headers=h)).status == 200
    fresh = (await new_tenant())["headers"]  # a key this address never presented
    assert (await client.get("/v1/credentials", headers=fresh)).status == 200


async def test_a_refusal_over_the_allowance_is_held_and_a_valid_key_is_not(
    client: Client, new_tenant: Any
) -> None:
    """Past the allowance each wrong key is answered only after the hold, which bounds how
    fast one address can guess; a valid key from that address still answers at once."""
    failures = client.server.app[AUTH_FAILURES]
    still = failures.clock()
    failures.clock = lambda: still  # no token comes back during the test
    failures.hold = 0.5
    for i in range(FAILURES_PER_MINUTE):
        resp = await client.get("/v1/credentials", headers=bearer(f"otpg_guess{i:04d}"))
        assert resp.status == 401
    started = time.monotonic()
    resp = await client.get("/v1/credentials", headers=bearer("otpg_guess_over"))
    held = time.monotonic() - started
    await assert_error(resp, 429, "too_many_failures")
    assert held >= 0.5
    fresh = (await new_tenant())["headers"]
    started = time.monotonic()
    assert (await client.get("/v1/credentials", headers=fresh)).status == 200
    assert time.monotonic() - started < 0.5


async def test_guessing_submit_tokens_is_limited(client: Client, new_tenant: Any) -> None:
    """Unknown submit tokens from one address meet a 429 page after a short burst, while a
    link that was opened before still answers."""
    client.server.app[AUTH_FAILURES].hold = 0.0
    h = (await new_tenant())["headers"]
    cred = await (await client.post("/v1/credentials", json={"name": "c"}, headers=h)).json()
    made = await client.post(f"/v1/credentials/{cred['id']}/interactions", json={}, headers=h)
    path = "/submit/" + (await made.json())["submit_url"].rsplit("/", 1)[1]
    assert (await client.get(path)).status == 200
    statuses = [
        (await client.get(f"/submit/{'x' * 20}{i:04d}")).status
        for i in range(FAILURES_PER_MINUTE + 5)
    ]
    assert statuses[:FAILURES_PER_MINUTE] == [404] * FAILURES_PER_MINUTE
    assert set(statuses[FAILURES_PER_MINUTE:]) == {429}
    limited = await client.post(f"/submit/{'y' * 24}", json={"code": "123456"})
    await assert_error(limited, 429, "too_many_failures")
    assert "Retry-After" in limited.headers
    assert (await client.get(path)).status == 200


@pytest.mark.parametrize(
    "kind",
    [
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/octet-stream",
    ],
)
async def test_json_routes_refuse_other_content_types(
    client: Client, new_tenant: Any, kind: str
) -> None:
    """A JSON body labelled as another type is a 415 and creates nothing."""
    h = (await new_tenant())["headers"]
    body = b'{"name": "c"}'
    for path in ("/v1/credentials", "/v1/keys"):
        resp = await client.post(path, data=body, headers=h | {"Content-Type": kind})
        await assert_error(resp, 415, "unsupported_media_type")
    listed = await (await client.get("/v1/credentials", headers=h)).json()
    assert listed["credentials"] == []


async def test_json_routes_take_curl_d_and_unlabelled_bodies(
    client: Client, new_tenant: Any
) -> None:
    """What `curl -d` sends (labelled a form) and a body with no Content-Type are read as JSON,
    as README's examples need; so is application/json with a charset or a +json type."""
    h = (await new_tenant())["headers"]
    port = client.port
    assert port is not None
    key = h["Authorization"].encode()
    for label in (
        b"application/x-www-form-urlencoded",
        b"application/json; charset=utf-8",
        b"application/merge-patch+json",
        None,
    ):
        body = b'{"name": "c"}'
        head = b"POST /v1/credentials HTTP/1.1\r\nHost: x\r\nAuthorization: " + key
        head += b"\r\nContent-Length: " + str(len(body)).encode()
        if label is not None:
            head += b"\r\nContent-Type: " + label
        assert (await raw_http(port, head, body)).status == 201, label
