"""The sweepers on a store of any size: indexed deletes (migration 0014), no write when idle.

``benchmarks/scale.py`` measures the sweeper on a million rows; these tests
pin the query plans that keep it within reach of an empty store, and that a
round with nothing due only looks (one index probe per table) and writes
nothing.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ClauseElement, TextClause
from sqlmodel import col

from gateway.app import Gateway
from gateway.store.models import (
    CodeWait,
    Credential,
    InboundSeen,
    MessageCount,
    ReceivedCode,
    Tenant,
    Webhook,
    WebhookAttempt,
)
from gateway.timestamps import utc_day

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


def sweeper_round(gw: Gateway) -> list[Callable[[], Awaitable[Any]]]:
    """Every sweep the gateway's sweeper runs (each round or less often)."""
    s = gw.services
    return [
        s.codes.sweep, s.interactions.sweep, s.logins.sweep, s.sms.sweep,
        s.web_sessions.sweep, s.message_counts.sweep, s.webhook_endpoints.forget_attempts,
    ]  # fmt: skip


@contextlib.contextmanager
def statements() -> Iterator[list[Any]]:
    """The statements (SQLAlchemy constructs) run by any engine in the block."""
    seen: list[Any] = []

    def record(conn: Any, clause: Any, *_: Any) -> None:
        if isinstance(clause, ClauseElement) and not isinstance(clause, TextClause):
            seen.append(clause)

    event.listen(Engine, "before_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_execute", record)


#: Sessions of people signed in to the pages: a short table, read whole.
SHORT = {"web_sessions"}


async def test_sweeper_round_reads_no_long_table_whole(gateway: Gateway) -> None:
    """No statement of a sweeper round scans a table that grows with the data.

    On PostgreSQL the planner chooses freely here, on tables it has no
    statistics for: as on a store just filled, or where autovacuum is off.
    """
    with statements() as seen:
        for sweep in sweeper_round(gateway):
            await sweep()
    assert seen
    for stmt in seen:
        plan = await _plan(gateway, stmt, seqscan=True)
        if gateway.db.is_sqlite:
            scanned = set(re.findall(r"^SCAN (\w+)", plan, re.MULTILINE))
        else:
            scanned = set(re.findall(r"Seq Scan on (\w+)", plan))
        assert scanned <= SHORT, plan


async def test_sweeper_round_with_nothing_due_writes_nothing(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round that finds nothing due opens no write transaction (no write lock, no commit)."""
    writes = 0
    write = gateway.db.write

    def counted() -> Any:
        nonlocal writes
        writes += 1
        return write()

    monkeypatch.setattr(gateway.db, "write", counted)
    for sweep in sweeper_round(gateway):
        await sweep()
    assert writes == 0


async def test_sweeper_round_removes_what_is_due_and_keeps_the_rest(gateway: Gateway) -> None:
    """Lapsed waits, old message ids, counts and attempts and expired codes go; the rest stays."""
    now = time.time()
    old_day = "2000-01-01"
    async with gateway.db.write() as conn:
        await conn.execute(insert(Tenant), [{"id": "ten_s", "name": "s", "created_at": now}])
        await conn.execute(insert(Credential), [{
            "id": "cred_s", "tenant_id": "ten_s", "name": "s", "inbox": "s0",
            "data_key": b"x", "key_version": 1, "created_at": now, "updated_at": now,
            "report_unsolicited": True,
        }])  # fmt: skip
        await conn.execute(insert(Webhook), [{
            "id": "wh_s", "tenant_id": "ten_s", "url": "https://hooks.example/x",
            "events": "[]", "enabled": False, "data_key": b"x", "key_version": 1,
            "secret": b"x", "created_at": now,
        }])  # fmt: skip
        for name, at in (("old", now - 30 * 86400), ("new", now)):
            await conn.execute(insert(ReceivedCode), [{
                "id": f"code_{name}", "tenant_id": "ten_s", "credential_id": "cred_s",
                "source": "email", "kind": "code", "code": b"x", "sender": "x@service.example",
                "received_at": at, "expires_at": at + 60,
            }])  # fmt: skip
            await conn.execute(insert(WebhookAttempt), [{
                "id": f"wha_{name}", "tenant_id": "ten_s", "webhook_id": "wh_s",
                "event": "code.received", "attempt": 1, "at": at, "outcome": "delivered",
                "status": 204,
            }])  # fmt: skip
            await conn.execute(
                insert(InboundSeen), [{"provider": "twilio", "message_id": name, "seen_at": at}]
            )
            await conn.execute(
                insert(CodeWait), [{"id": name, "credential_id": "cred_s", "until": at + 60}]
            )
            await conn.execute(insert(MessageCount), [{
                "tenant_id": "ten_s", "credential_id": "cred_s",
                "day": old_day if name == "old" else utc_day(now), "channel": "email",
                "messages": 1, "codes": 1,
            }])  # fmt: skip
    for sweep in sweeper_round(gateway):
        await sweep()
    async with gateway.db.read() as conn:
        left = {
            table.__tablename__: sorted(
                str(v) for v in (await conn.execute(select(column))).scalars()
            )
            for table, column in (
                (ReceivedCode, col(ReceivedCode.id)),
                (WebhookAttempt, col(WebhookAttempt.id)),
                (InboundSeen, col(InboundSeen.message_id)),
                (CodeWait, col(CodeWait.id)),
                (MessageCount, col(MessageCount.day)),
            )
        }
    assert left == {
        "received_codes": ["code_new"],
        "webhook_attempts": ["wha_new"],
        "inbound_seen": ["new"],
        "code_waits": ["new"],
        "message_counts": [utc_day(now)],
    }


async def test_metrics_scrape_counts_only_the_queues(client: Any) -> None:
    """/metrics counts the sending queues, never the received codes (a million on a full store)."""
    with statements() as seen:
        resp = await client.get("/metrics")
        assert resp.status == 200
    read = " ".join(str(stmt) for stmt in seen)
    assert "forward_outbox" in read and "webhook_deliveries" in read
    assert "received_codes" not in read


async def _plan(gateway: Gateway, stmt: Any, *, seqscan: bool = False) -> str:
    dialect = sqlite.dialect() if gateway.db.is_sqlite else postgresql.dialect()
    sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    async with gateway.db.write() as conn:
        if gateway.db.is_sqlite:
            rows = await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
            return "\n".join(str(r[-1]) for r in rows)
        if not seqscan:
            # An empty table is cheapest to scan: ask whether an index can serve at all.
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
        return "\n".join(r[0] for r in await conn.execute(text(f"EXPLAIN {sql}")))
