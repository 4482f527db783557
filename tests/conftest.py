"""Shared fixtures: a real gateway on real SQLite files, and on the real PostgreSQL.

Every test that takes ``gateway`` runs once per database engine.  The
PostgreSQL runs use a database created for this test run and dropped at its
end; they skip with a reason when no server answers at
``OTPGATE_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``),
unless ``OTPGATE_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) makes that a failure.
The helpers these fixtures use, and the tests too, live in ``helpers``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import Gateway
from gateway.settings import Settings

from .helpers import (
    ADMIN,
    bearer,
    create_database,
    drop_database,
    make_settings,
    opened,
    reset_postgres,
)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database made for this test run (dropped afterwards), as a URL."""
    url = create_database("otpgate_test")
    yield url
    drop_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each engine, as the contract's URL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'otpgate.db'}"
        return
    url = request.getfixturevalue("postgres_database")
    asyncio.run(reset_postgres(url))
    yield url


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
