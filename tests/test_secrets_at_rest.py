"""The vault as the gateway uses it: nothing in clear at rest, rows bound, keys rotating live."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import text

from gateway.app import Gateway
from gateway.errors import Conflict
from gateway.services import keys

from .helpers import eventually

Client = TestClient[Any, Any]

PASSWORD = "correct-horse-battery-staple-41"
SECRET_B32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # RFC 6238 seed, base32
SECRET_RAW = b"12345678901234567890"


async def _setup(client: Client, new_tenant: Any, n: int = 1) -> tuple[dict[str, str], list[str]]:
    tenant = await new_tenant()
    h = tenant["headers"]
    ids = []
    for i in range(n):
        cred = await (
            await client.post(
                "/v1/credentials", json={"name": f"c{i}", "password": PASSWORD}, headers=h
            )
        ).json()
        resp = await client.put(
            f"/v1/credentials/{cred['id']}/authenticator",
            json={"secret": SECRET_B32, "kind": "totp"},
            headers=h,
        )
        assert resp.status == 200
        ids.append(cred["id"])
    return h, ids


def _needles(extra: list[str]) -> list[bytes]:
    out = []
    for s in [PASSWORD, SECRET_B32, *extra]:
        b = s.encode()
        out += [b, s.lower().encode(), base64.b64encode(b), b.hex().encode()]
    out += [SECRET_RAW, SECRET_RAW.hex().encode(), base64.b64encode(SECRET_RAW)]
    return out


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_no_secret_in_clear_in_the_data_directory(
    gateway: Gateway, client: Client, new_tenant: Any, tmp_path: Path
) -> None:
    """After use, no file under the data dir holds a password, TOTP secret or API key in clear."""
    tenant = await new_tenant()
    h = tenant["headers"]
    cred = await (
        await client.post("/v1/credentials", json={"name": "c", "password": PASSWORD}, headers=h)
    ).json()
    await client.put(
        f"/v1/credentials/{cred['id']}/authenticator",
        json={"otpauth_uri": f"otpauth://totp/x?secret={SECRET_B32}"},
        headers=h,
    )
    assert (await client.get(f"/v1/credentials/{cred['id']}/code", headers=h)).status == 200
    assert (await client.get(f"/v1/credentials/{cred['id']}/password", headers=h)).status == 200
    # Make sure everything reached the files: checkpoint the WAL, then scan WAL and all.
    async with gateway.db.write() as conn:
        await conn.execute(text("SELECT 1"))
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert any(p.name == "otpgate.db" for p in files)
    needles = _needles([tenant["api_key"]])
    for path in files:
        if path.name == "master.key":
            continue  # the key ring itself; its protection is file mode 0600
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"{path.name} holds a secret in clear"


async def test_ciphertext_moved_between_rows_fails_to_open(
    gateway: Gateway, client: Client, new_tenant: Any
) -> None:
    """A sealed password copied to another credential's row does not open there."""
    h, (a, b) = await _setup(client, new_tenant, 2)
    async with gateway.db.write() as conn:
        blob = (
            await conn.execute(text("SELECT password FROM credentials WHERE id = :a"), {"a": a})
        ).scalar_one()
        await conn.execute(
            text("UPDATE credentials SET password = :p WHERE id = :b"), {"p": blob, "b": b}
        )
    resp = await client.get(f"/v1/credentials/{b}/password", headers=h)
    assert resp.status == 500
    body = await resp.json()
    assert body["error"]["code"] == "vault_error"
    assert PASSWORD not in await resp.text()
    # The original row still opens.
    ok = await client.get(f"/v1/credentials/{a}/password", headers=h)
    assert (await ok.json())["password"] == PASSWORD


async def test_ciphertext_moved_between_fields_fails_to_open(
    gateway: Gateway, client: Client, new_tenant: Any
) -> None:
    """The authenticator secret copied into the password field of the same row does not open."""
    h, (a,) = await _setup(client, new_tenant, 1)
    async with gateway.db.write() as conn:
        await conn.execute(
            text(
                "UPDATE credentials SET password = "
                "(SELECT secret FROM authenticators WHERE credential_id = :a) WHERE id = :a"
            ),
            {"a": a},
        )
    resp = await client.get(f"/v1/credentials/{a}/password", headers=h)
    assert resp.status == 500 and (await resp.json())["error"]["code"] == "vault_error"


async def test_rotation_under_concurrent_reads(
    gateway: Gateway, client: Client, new_tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rotating the master key while agents read codes and passwords fails no request."""
    monkeypatch.setattr(keys, "_BATCH", 3)  # many small batches, with requests between them
    h, ids = await _setup(client, new_tenant, 30)
    stop = asyncio.Event()
    failures: list[int] = []
    done = 0

    async def reader(i: int) -> None:
        nonlocal done
        while not stop.is_set():
            cred = ids[(i + done) % len(ids)]
            for suffix in ("/code", "/password"):
                resp = await client.get(f"/v1/credentials/{cred}{suffix}", headers=h)
                if resp.status != 200:
                    failures.append(resp.status)
                await resp.read()
            done += 1

    async def read_since(mark: int) -> bool:
        return done > mark

    readers = [asyncio.create_task(reader(i)) for i in range(8)]
    await eventually(lambda: read_since(0))  # the agents are reading
    before = done
    first = await keys.rotate(gateway.db, gateway.keyring)
    second = await keys.rotate(gateway.db, gateway.keyring)
    during = done - before
    await eventually(lambda: read_since(before + during))  # and read on after it
    stop.set()
    await asyncio.gather(*readers)
    assert failures == []
    assert during > 0, "no read overlapped the rotation"
    assert (first.version, second.version) == (2, 3)
    assert first.rewrapped == 30 and second.rewrapped == 30
    assert await keys.usage(gateway.db) == {3: 30}
    # Old versions now wrap nothing and can go; the active one cannot.
    await keys.retire(gateway.db, gateway.keyring, 1)
    with pytest.raises(Conflict):
        await keys.retire(gateway.db, gateway.keyring, 3)
    for cred in ids[:3]:
        resp = await client.get(f"/v1/credentials/{cred}/password", headers=h)
        assert (await resp.json())["password"] == PASSWORD


async def test_retire_refuses_a_version_in_use(
    gateway: Gateway, client: Client, new_tenant: Any
) -> None:
    """A master version that still wraps a data key cannot be retired."""
    await _setup(client, new_tenant, 2)
    gateway.keyring.add_version()  # a new version, but nothing rewrapped yet
    with pytest.raises(Conflict, match="still wraps 2"):
        await keys.retire(gateway.db, gateway.keyring, 1)
    assert 1 in gateway.keyring.versions
