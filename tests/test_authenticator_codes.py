"""Vault-stored authenticators: importing secrets and handing out TOTP/HOTP codes."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import pyotp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from gateway.app import Gateway
from gateway.services.codes import CodeService
from gateway.store.models import Authenticator

from .helpers import assert_error

Client = TestClient[Any, Any]
SECRET = "JBSWY3DPEHPK3PXP"  # 80 bits, the kind of secret many services issue


class RefTOTP(pyotp.TOTP):
    """pyotp as an independent reference, allowed the 80-bit secrets real services issue."""

    min_secret_length_bits = 80


class RefHOTP(pyotp.HOTP):
    min_secret_length_bits = 80


async def make_credential(client: Client, h: dict[str, str], **auth: Any) -> str:
    cred = await (await client.post("/v1/credentials", json={"name": "svc"}, headers=h)).json()
    if auth:
        resp = await client.put(f"/v1/credentials/{cred['id']}/authenticator", json=auth, headers=h)
        assert resp.status == 200, await resp.text()
    return str(cred["id"])


async def test_totp_from_uri(client: Client, new_tenant: Any) -> None:
    """An otpauth:// TOTP URI is accepted and GET code returns the current code and expiry."""
    h = (await new_tenant())["headers"]
    uri = f"otpauth://totp/ACME%20Co:bot%40example.com?secret={SECRET.lower()}&issuer=ACME%20Co"
    cred = await make_credential(client, h, otpauth_uri=uri)
    before = RefTOTP(SECRET).now()
    resp = await client.get(f"/v1/credentials/{cred}/code", headers=h)
    after = RefTOTP(SECRET).now()
    assert resp.status == 200
    body = await resp.json()
    assert body["source"] == "totp"
    assert body["code"] in (before, after)
    expires = datetime.fromisoformat(body["expires_at"]).timestamp()
    assert 0 < expires - time.time() <= 30 and expires % 30 == 0
    shown = await (await client.get(f"/v1/credentials/{cred}", headers=h)).json()
    assert shown["authenticator"] == {
        "kind": "totp",
        "digits": 6,
        "period": 30,
        "algorithm": "SHA1",
    }


async def test_totp_from_fields_with_options(client: Client, new_tenant: Any) -> None:
    """Raw fields with 8 digits, a 60 s period and SHA256 give the matching codes."""
    h = (await new_tenant())["headers"]
    secret = pyotp.random_base32(32)
    cred = await make_credential(
        client, h, secret=secret, kind="totp", digits=8, period=60, algorithm="SHA256"
    )
    import hashlib

    ref = RefTOTP(secret, digits=8, interval=60, digest=hashlib.sha256)
    before = ref.now()
    body = await (await client.get(f"/v1/credentials/{cred}/code", headers=h)).json()
    assert body["code"] in (before, ref.now()) and len(body["code"]) == 8


async def test_hotp_counter_moves_on_once_per_code(client: Client, new_tenant: Any) -> None:
    """Each HOTP code handed out uses the next counter value, even under concurrency."""
    h = (await new_tenant())["headers"]
    cred = await make_credential(client, h, secret=SECRET, kind="hotp", counter=5)
    ref = RefHOTP(SECRET)

    async def one() -> str:
        resp = await client.get(f"/v1/credentials/{cred}/code", headers=h)
        assert resp.status == 200
        body = await resp.json()
        assert body["source"] == "hotp"
        return str(body["code"])

    codes = await asyncio.gather(*(one() for _ in range(20)))
    assert sorted(codes) == sorted(ref.at(c) for c in range(5, 25))


async def test_min_validity_waits_for_the_next_step(
    gateway: Gateway, new_tenant: Any, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TOTP about to expire is not handed out: the call waits for the next step within wait."""
    h = (await new_tenant())["headers"]
    cred = await make_credential(client, h, secret=SECRET, kind="totp")
    tenant = await gateway.services.tenants.authenticate(h["Authorization"][7:])
    assert tenant.tenant_id is not None
    clock = [1_800_000_028.0]  # 2 s before a step ends
    real_sleep = asyncio.sleep
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds
        await real_sleep(0)

    db, vault = gateway.db, gateway.services.codes._vault
    service = CodeService(db, vault, clock=lambda: clock[0])
    monkeypatch.setattr("gateway.services.codes.asyncio.sleep", fake_sleep)
    # step boundaries fall on multiples of 30 s: 1_800_000_000 is one
    code = await service.code(tenant.tenant_id, cred, wait=5, min_validity=10)
    assert code is not None and slept == [pytest.approx(2.0)]
    assert code.code == RefTOTP(SECRET).at(1_800_000_030)
    assert code.expires_at == 1_800_000_060
    # Without enough wait, nothing is handed out (the API answers 204).
    clock[0] = 1_800_000_028.0
    assert await service.code(tenant.tenant_id, cred, wait=1, min_validity=10) is None
    # A code with enough life left comes at once.
    clock[0] = 1_800_000_031.0
    code = await service.code(tenant.tenant_id, cred, wait=0, min_validity=10)
    assert code is not None and code.code == RefTOTP(SECRET).at(1_800_000_031)


async def test_min_validity_beyond_the_period_is_refused(client: Client, new_tenant: Any) -> None:
    """Asking for more validity than a step lasts is a 422, not an endless wait."""
    h = (await new_tenant())["headers"]
    cred = await make_credential(client, h, secret=SECRET, kind="totp")
    resp = await client.get(f"/v1/credentials/{cred}/code?min_validity=30", headers=h)
    assert resp.status == 422


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"otpauth_uri": "otpauth://totp/x?secret=JBSWY3DP"}, "80"),
        ({"otpauth_uri": "otpauth://totp/x?secret=not*base32!!"}, "base32"),
        ({"otpauth_uri": "http://totp/x?secret=JBSWY3DPEHPK3PXP"}, "otpauth"),
        ({"otpauth_uri": "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=4"}, "digits"),
        ({"otpauth_uri": "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&algorithm=MD5"}, "algorithm"),
        ({"otpauth_uri": "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&period=0"}, "period"),
        ({"otpauth_uri": "otpauth://totp/x?issuer=A"}, "secret"),
        ({"secret": "JBSWY3DPEHPK3PXP"}, "kind"),
        ({"secret": "JBSWY3DPEHPK3PXP", "kind": "push"}, "kind"),
        ({"secret": "JBSWY3DPEHPK3PXP", "kind": "hotp", "counter": -1}, "counter"),
        ({"secret": "JBSWY3DPEHPK3PXP", "kind": "totp", "digits": "6"}, "digits"),
        ({"otpauth_uri": "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP", "digits": 6}, "alone"),
        ({}, "otpauth_uri"),
    ],
)
async def test_bad_authenticators_are_422_without_the_secret(
    client: Client, new_tenant: Any, payload: dict[str, Any], fragment: str
) -> None:
    """Bad authenticator input is a 422 that says what is wrong and never echoes the secret."""
    h = (await new_tenant())["headers"]
    cred = await make_credential(client, h)
    resp = await client.put(f"/v1/credentials/{cred}/authenticator", json=payload, headers=h)
    assert resp.status == 422, await resp.text()
    text = await resp.text()
    assert fragment in (await resp.json())["error"]["message"]
    for secret in ("JBSWY3DP", "not*base32"):
        assert secret not in text


async def test_authenticator_removal(client: Client, new_tenant: Any) -> None:
    """After DELETE .../authenticator the credential no longer hands out TOTP codes."""
    h = (await new_tenant())["headers"]
    cred = await make_credential(client, h, secret=SECRET, kind="totp")
    assert (await client.delete(f"/v1/credentials/{cred}/authenticator", headers=h)).status == 204
    assert (await client.delete(f"/v1/credentials/{cred}/authenticator", headers=h)).status == 404
    resp = await client.get(f"/v1/credentials/{cred}/code", headers=h)
    assert resp.status == 204
    shown = await (await client.get(f"/v1/credentials/{cred}", headers=h)).json()
    assert shown["authenticator"] is None


async def test_source_filter(client: Client, new_tenant: Any) -> None:
    """Asking a TOTP credential for source=hotp is refused; source=totp is served."""
    h = (await new_tenant())["headers"]
    cred = await make_credential(client, h, secret=SECRET, kind="totp")
    assert (await client.get(f"/v1/credentials/{cred}/code?source=totp", headers=h)).status == 200
    assert (await client.get(f"/v1/credentials/{cred}/code?source=hotp", headers=h)).status == 422


async def test_hotp_counter_at_the_end_of_its_range(
    client: Client, gateway: Gateway, new_tenant: Any
) -> None:
    """A counter over 2**63 - 1 is a 422; at 2**63 - 1 it is stored as an integer, codes are
    handed out up to the last value, and the next ask is a 409, never a 500 or a float."""
    h = (await new_tenant())["headers"]
    cred = await (await client.post("/v1/credentials", json={"name": "svc"}, headers=h)).json()
    url = f"/v1/credentials/{cred['id']}/authenticator"
    for too_big in (2**63, 2**64, 10**30):
        body = {"secret": SECRET, "kind": "hotp", "counter": too_big}
        await assert_error(await client.put(url, json=body, headers=h), 422, "invalid")
        uri = f"otpauth://hotp/x?secret={SECRET}&counter={too_big}"
        await assert_error(await client.put(url, json={"otpauth_uri": uri}, headers=h), 422)
    last = 2**63 - 1
    body = {"secret": SECRET, "kind": "hotp", "counter": last - 1}
    assert (await client.put(url, json=body, headers=h)).status == 200
    codes = f"/v1/credentials/{cred['id']}/code"
    first = await client.get(codes, headers=h)
    assert first.status == 200 and (await first.json())["code"] == RefHOTP(SECRET).at(last - 1)
    second = await client.get(codes, headers=h)
    assert second.status == 200 and (await second.json())["code"] == RefHOTP(SECRET).at(last)
    await assert_error(await client.get(codes, headers=h), 409, "counter_exhausted")
    async with gateway.db.read() as conn:
        stored = (
            await conn.execute(
                select(Authenticator.counter).where(
                    Authenticator.credential_id == cred["id"]  # type: ignore[arg-type]
                )
            )
        ).scalar_one()
    assert type(stored) is int
