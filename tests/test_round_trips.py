"""What handing out a code costs in round trips to the database, pinned.

An agent woken for a code waits on these round trips (across replicas, on
PostgreSQL, they are most of what follows the wake-up), so a change that
adds one shows here.  They are counted from SQLAlchemy's events
(``Database.round_trips``), which do not depend on the machine's load.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event

from gateway.app import Gateway
from gateway.services.inbound import Message

from .helpers import eventually

#: Looking the credential up (one read), then one transaction: ``BEGIN``, the
#: statement that takes the code, drops the older ones and reads the data key
#: and the audit head, the ``code.read`` event, ``COMMIT``.  SQLite runs more,
#: smaller statements (no network between them): a look before the write lock,
#: ``BEGIN IMMEDIATE``, both deletions, the data key, the audit head, the event
#: and the head's move, ``COMMIT``.
HAND_OUT = {"postgresql": 5, "sqlite": 10}
#: Nothing to hand out: the read, then ``BEGIN``, the take that finds nothing,
#: ``COMMIT`` (SQLite: the read and the look, and no write at all).
NOTHING = {"postgresql": 4, "sqlite": 2}
#: A mail's code stored: ``BEGIN``, the code with its wake-up (SQLite has none),
#: the webhook fan-out and ``code.unsolicited``, the day's count, ``COMMIT``.
ARRIVAL = {"postgresql": 6, "sqlite": 6}


async def _credential(gw: Gateway) -> tuple[str, str, Any]:
    tenant = await gw.services.tenants.create("acme")
    cred = await gw.services.credentials.create(tenant.id, name="c", username=None, password=None)
    info = await gw.services.credentials.get(tenant.id, cred.id)
    route = await gw.services.inbound.route_for_inbox(info.inbox.partition("@")[0])
    assert route is not None
    return tenant.id, cred.id, route


def _mail(code: str) -> Message:
    return Message(
        channel="email",
        sender="no-reply@service.example",
        sender_domain="service.example",
        subject="Your code",
        text=f"Your verification code is {code}.",
    )


async def test_handing_out_a_code_costs_a_pinned_number_of_round_trips(gateway: Gateway) -> None:
    """A code stored and handed out costs exactly the round trips counted above, no more."""
    db = gateway.db
    tenant_id, cred_id, route = await _credential(gateway)
    for n in range(3):  # every pooled connection has its statements prepared
        await gateway.services.inbound.accept(_mail(f"10000{n}"), [route])
        await gateway.services.codes.code(tenant_id, cred_id)
    with db.round_trips() as arrival:
        await gateway.services.inbound.accept(_mail("271828"), [route])
    with db.round_trips() as hand_out:
        code = await gateway.services.codes.code(tenant_id, cred_id)
    with db.round_trips() as nothing:
        assert await gateway.services.codes.code(tenant_id, cred_id) is None
    assert code is not None and code.code == "271828"
    counts = (arrival.count, hand_out.count, nothing.count)
    dialect = db.dialect
    assert counts == (ARRIVAL[dialect], HAND_OUT[dialect], NOTHING[dialect])
    events = await gateway.services.audit.latest(tenant_id, credential_id=cred_id, limit=1)
    assert events[0]["action"] == "code.read"  # the cheaper path still writes its event
    assert not (await gateway.services.audit.verify(tenant_id)).broken


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_connection_the_server_closed_is_replaced_without_an_error(
    gateway: Gateway,
) -> None:
    """After PostgreSQL ends the pooled connections (as a restart does), the next hand-out
    gets a fresh connection and succeeds: the pool notices without a ping round trip."""
    db = gateway.db
    pooled: list[Any] = []  # every connection the pool has held
    event.listen(db.engine.sync_engine, "checkin", lambda dbapi, _record: pooled.append(dbapi))
    tenant_id, cred_id, route = await _credential(gateway)
    await gateway.services.inbound.accept(_mail("141421"), [route])
    admin = await asyncpg.connect(db.libpq_dsn(), timeout=5)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()

    async def all_closed() -> bool:  # asyncpg has read each connection's end
        return all(conn.driver_connection.is_closed() for conn in pooled)

    assert pooled
    await eventually(all_closed, within=10)
    code = await gateway.services.codes.code(tenant_id, cred_id)
    assert code is not None and code.code == "141421"


async def test_takers_racing_for_several_codes_never_deadlock(gateway: Gateway) -> None:
    """Sixteen agents taking at once from eight waiting codes: no error, no lock wait
    ended by the deadlock detector, and no code handed out twice."""
    tenant_id, cred_id, route = await _credential(gateway)
    handed: list[str] = []
    for round_ in range(12):
        codes = {f"{round_:02d}{i:04d}" for i in range(8)}
        for code in sorted(codes):
            await gateway.services.inbound.accept(_mail(code), [route])
        got = await asyncio.gather(
            *(gateway.services.codes.code(tenant_id, cred_id) for _ in range(16)),
            return_exceptions=True,
        )
        errors = [g for g in got if isinstance(g, BaseException)]
        assert errors == []
        taken = [g.code for g in got if g is not None and not isinstance(g, BaseException)]
        assert taken and set(taken) <= codes
        handed += taken
        assert await gateway.services.codes.code(tenant_id, cred_id) is None  # none left
    assert len(handed) == len(set(handed))
    assert not (await gateway.services.audit.verify(tenant_id)).broken
