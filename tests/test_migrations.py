"""Schema migrations: an old database is upgraded in place, and the models match the schema."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from gateway.store.db import Database, head_revision
from gateway.store.models import metadata

from .helpers import make_settings, opened


async def test_upgrade_from_the_first_schema_keeps_the_data(
    database_url: str, tmp_path: Path
) -> None:
    """A database at revision 0001 with data in it upgrades to head and keeps serving that data."""
    settings = make_settings(tmp_path, database_url)
    db = await Database.open(settings.database_url, migrate=False)
    await db.migrate_to("0001")
    assert await db.revision() == "0001"
    async with db.write() as conn:
        await conn.execute(text("INSERT INTO tenants VALUES ('ten_aaaaaaaaaaaaaaaa', 'old', 1.0)"))
    await db.close()

    async with opened(settings) as gateway:  # runs the migrations on start
        assert await gateway.db.revision() == head_revision()
        async with gateway.db.engine.connect() as conn:
            names = (await conn.execute(text("SELECT name FROM tenants"))).scalars().all()
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert names == ["old"]
        assert set(metadata.tables) <= tables
        # The upgraded store works end to end: a credential with an authenticator.
        tenant = await gateway.services.tenants.create("new")
        cred = await gateway.services.credentials.create(
            tenant.id, name="c", username=None, password="pw"
        )
        assert await gateway.services.credentials.password(tenant.id, cred.id) == "pw"


async def test_models_match_the_migrated_schema(database_url: str, tmp_path: Path) -> None:
    """Every model column exists in the migrated database with the same nullability."""
    db = await Database.open(make_settings(tmp_path, database_url).database_url)
    try:
        async with db.engine.connect() as conn:

            def columns(c: object) -> dict[str, dict[str, bool]]:
                insp = inspect(c)
                return {
                    t: {col["name"]: bool(col["nullable"]) for col in insp.get_columns(t)}
                    for t in metadata.tables
                }

            actual = await conn.run_sync(columns)
        for name, table in metadata.tables.items():
            expected = {c.name: bool(c.nullable) for c in table.columns}
            assert actual[name] == expected, name
    finally:
        await db.close()


async def test_migrating_twice_is_harmless(database_url: str, tmp_path: Path) -> None:
    """Starting on an up-to-date database changes nothing."""
    url = make_settings(tmp_path, database_url).database_url
    for _ in range(2):
        db = await Database.open(url)
        assert await db.revision() == head_revision()
        await db.close()
