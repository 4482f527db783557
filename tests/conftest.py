"""Shared fixtures: a real gateway on real SQLite files, and on the real PostgreSQL.

Every test that takes ``gateway`` runs once per database engine.  The
PostgreSQL runs use a database created for this test run and dropped at its
end; they skip with a reason when no server answers at
``OTPGATE_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``),
unless ``OTPGATE_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import Gateway, bind, serving
from gateway.settings import Address, Settings

SHARED = Path(__file__).resolve().parents[2] / "shared"
POSTGRES_URL = os.environ.get(
    "OTPGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("OTPGATE_REQUIRE_POSTGRES") == "1"
ADMIN_KEY = "test-admin-key-0123456789abcdef"


def listening() -> socket.socket:
    """A listening socket on a free loopback port, for :func:`gateway.app.serving` to serve on."""
    return bind(Address("127.0.0.1", 0), "test listener")


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database made for this test run (dropped afterwards), as a URL."""
    name = f"otpgate_test_{secrets.token_hex(4)}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        reason = f"PostgreSQL is not reachable at {POSTGRES_URL} ({type(exc).__name__})"
        if REQUIRE_POSTGRES:
            pytest.fail(f"{reason}, and OTPGATE_REQUIRE_POSTGRES=1")
        pytest.skip(reason)
    base = POSTGRES_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def reset_postgres(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=3)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each engine, as the contract's URL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'otpgate.db'}"
        return
    url = request.getfixturevalue("postgres_database")
    asyncio.run(reset_postgres(url))
    yield url


def make_settings(tmp_path: Path, database_url: str | None = None, **env: str) -> Settings:
    base = {
        "OTPGATE_DATA_DIR": str(tmp_path / "data"),
        "OTPGATE_ADMIN_KEY": ADMIN_KEY,
        "OTPGATE_HTTP": f"127.0.0.1:{free_port()}",
    }
    if database_url:
        base["OTPGATE_DATABASE_URL"] = database_url
    base.update(env)
    return Settings.from_env(base)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[Gateway]:
    async with opened(settings) as gw:
        yield gw


@pytest.fixture
async def client(
    gateway: Gateway, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> TestClient[Any, Any]:
    return await aiohttp_client(gateway.app, server_kwargs={"handler_cancellation": True})


@contextlib.asynccontextmanager
async def opened(settings: Settings, **options: Any) -> AsyncIterator[Gateway]:
    """The gateway as ``otpgate serve`` builds it, by default without listeners, workers or ingest.

    *options* are :func:`gateway.app.serving`'s (``http``, ``smtp``, ``background``, ``ingest``).
    """
    options = {"background": False, "ingest": False, **options}
    async with serving(settings, **options) as gw:
        yield gw


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


ADMIN = bearer(ADMIN_KEY)


@pytest.fixture
def new_tenant(client: TestClient[Any, Any]) -> Callable[..., Awaitable[dict[str, str]]]:
    """Create a tenant through the API; returns its JSON with ready ``headers``."""

    async def create(name: str = "acme") -> dict[str, Any]:
        resp = await client.post("/v1/tenants", json={"name": name}, headers=ADMIN)
        assert resp.status == 201, await resp.text()
        body: dict[str, Any] = await resp.json()
        body["headers"] = bearer(body["api_key"])
        return body

    return create
