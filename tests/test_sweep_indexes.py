"""The sweepers' deletes by time use an index on a store of any size (migration 0014).

``benchmarks/scale.py`` measures the sweeper on a million rows; these tests
pin the query plans that keep it within reach of an empty store.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from gateway.app import Gateway
from gateway.store.models import CodeWait, WebhookAttempt

SWEEPS = [
    (delete(WebhookAttempt).where(col(WebhookAttempt.at) < 1.0), "ix_webhook_attempts_at"),
    (delete(CodeWait).where(col(CodeWait.until) <= 1.0), "ix_code_waits_until"),
]


@pytest.mark.parametrize(("stmt", "index"), SWEEPS, ids=["webhook_attempts", "code_waits"])
async def test_sweep_by_time_uses_its_index(gateway: Gateway, stmt: Any, index: str) -> None:
    """The planner answers the sweep's delete with the time index, not a scan of the table."""
    dialect = sqlite.dialect() if gateway.db.is_sqlite else postgresql.dialect()
    sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    async with gateway.db.write() as conn:
        if not gateway.db.is_sqlite:
            # An empty table is cheapest to scan: ask whether the index can serve at all.
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(r[0] for r in await conn.execute(text(f"EXPLAIN {sql}")))
        else:
            plan = "\n".join(
                str(r[-1]) for r in await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
            )
    assert index in plan, plan
