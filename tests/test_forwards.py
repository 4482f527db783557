"""Forwarding: copies of each message to people, through a real SMTP relay on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiosmtpd.smtp import Envelope, Session
from sqlalchemy import delete, func, select, update
from sqlmodel import col

from gateway.app import Gateway, Tuning
from gateway.services.inbound import Message
from gateway.store import forwards as forwards_store
from gateway.store.models import Forward, ForwardOutbox

from .helpers import (
    ADMIN,
    Looks,
    Relay,
    bearer,
    eventually,
    listening,
    make_settings,
    opened,
    otp_mail,
    port_of,
    send_mail,
)

Client = TestClient[Any, Any]
#: A relay port for rules that are only made, never sent (the discard port: nothing listens).
NO_RELAY = 9


def _settings(tmp_path: Path, database_url: str, relay_port: int) -> Any:
    return make_settings(
        tmp_path,
        database_url,
        OTPGATE_SMTP_RELAY=f"smtp://127.0.0.1:{relay_port}",
        OTPGATE_SMTP_WORKER="0",
    )


class Rig:
    def __init__(self, gw: Gateway, api: Client, headers: dict[str, str], port: int) -> None:
        self.gw, self.api, self.headers, self.port = gw, api, headers, port

    async def credential(self) -> dict[str, Any]:
        resp = await self.api.post("/v1/credentials", json={"name": "Bank"}, headers=self.headers)
        cred: dict[str, Any] = await resp.json()
        return cred

    async def forward(self, cred: dict[str, Any], to: str = "person@example.com") -> Any:
        return await self.api.post(
            f"/v1/credentials/{cred['id']}/forwards",
            json={"channel": "email", "to": to},
            headers=self.headers,
        )


@contextlib.asynccontextmanager
async def rig(
    settings: Any,
    aiohttp_client: Callable[..., Awaitable[Client]],
    *,
    retry_base: float = 0.05,
    headers: dict[str, str] | None = None,
    workers: bool = True,
) -> AsyncIterator[Rig]:
    """A running gateway: HTTP API, SMTP listener and background workers."""
    smtp = listening()
    tuning = Tuning(outbox_poll=0.05, forward_retry_base=retry_base)
    async with opened(settings, smtp=smtp, tuning=tuning) as gw:
        api = await aiohttp_client(gw.app)
        if headers is None:
            resp = await api.post("/v1/tenants", json={"name": "acme"}, headers=ADMIN)
            headers = bearer((await resp.json())["api_key"])
        try:
            if workers:
                async with gw.background():
                    yield Rig(gw, api, headers, port_of(smtp))
            else:
                yield Rig(gw, api, headers, port_of(smtp))
        finally:
            await api.close()


async def outbox(gw: Gateway) -> int:
    async with gw.db.read() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(ForwardOutbox))).scalar_one()
        )


async def rule_status(r: Rig, cred: dict[str, Any]) -> dict[str, Any]:
    resp = await r.api.get(f"/v1/credentials/{cred['id']}/forwards", headers=r.headers)
    body: dict[str, Any] = await resp.json()
    return body["forwards"][0]  # type: ignore[no-any-return]


async def test_an_email_forward_arrives_and_the_agent_still_gets_the_code(
    tmp_path: Path, database_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """A mail to the inbox is copied to the person through the relay; the agent gets its code."""
    relay = Relay()
    await relay.start()
    settings = _settings(tmp_path, database_url, relay.port)
    try:
        async with rig(settings, aiohttp_client) as r:
            cred = await r.credential()
            resp = await r.forward(cred)
            assert resp.status == 201, await resp.text()
            rule = await resp.json()
            assert (rule["channel"], rule["to"], rule["last_status"]) == (
                "email", "person@example.com", None,
            )  # fmt: skip
            await asyncio.to_thread(send_mail, r.port, cred["inbox"], otp_mail("731902"))
            await asyncio.wait_for(relay.got.wait(), 10)
            sender, rcpts, raw = relay.mails[0]
            assert rcpts == ["person@example.com"]
            assert sender == settings.forward_from
            mail = email.message_from_bytes(raw, policy=email.policy.default)
            assert "Bank" in mail["Subject"]
            assert "731902" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            got = await r.api.get(f"/v1/credentials/{cred['id']}/code", headers=r.headers)
            assert (await got.json())["code"] == "731902"
            await eventually(lambda: _status_is(r, cred, "sent"))
            assert await outbox(r.gw) == 0
            assert len(relay.mails) == 1
    finally:
        await relay.stop()


async def _status_is(r: Rig, cred: dict[str, Any], status: str) -> bool:
    return (await rule_status(r, cred))["last_status"] == status


async def test_a_forward_is_retried_after_the_relay_was_down_and_sent_once_after_a_restart(
    tmp_path: Path,
    database_url: str,
    aiohttp_client: Callable[..., Awaitable[Client]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the relay down the copy waits and is retried; after a restart it is sent once."""
    relay = Relay()  # not started yet: connections are refused
    settings = _settings(tmp_path, database_url, relay.port)
    looks = Looks(monkeypatch, forwards_store, "any_due")
    async with rig(settings, aiohttp_client) as r:
        cred = await r.credential()
        assert (await r.forward(cred)).status == 201
        await asyncio.to_thread(send_mail, r.port, cred["inbox"], otp_mail("404404"))
        await eventually(lambda: _status_is(r, cred, "retrying"))
        rule = await rule_status(r, cred)
        assert "could not be reached" in rule["last_error"]
        assert rule["pending"] == 1
        cred_id, headers = cred["id"], r.headers
    # The gateway is stopped; the copy is still in the outbox, sealed.
    await relay.start()
    try:
        async with rig(settings, aiohttp_client, headers=headers) as r2:
            # Make the copy due now rather than after its back-off.
            async with r2.gw.db.write() as conn:
                await conn.execute(update(ForwardOutbox).values(next_attempt_at=0.0))
            r2.gw.services.forward_outbox.wake()
            await asyncio.wait_for(relay.got.wait(), 10)
            await eventually(lambda: _status_is(r2, {"id": cred_id}, "sent"))
            await looks.again()  # the sender looked again: a wrong second attempt would show
            assert len(relay.mails) == 1
            assert await outbox(r2.gw) == 0
    finally:
        await relay.stop()


async def test_a_copy_interrupted_while_sending_is_never_sent_twice(
    tmp_path: Path,
    database_url: str,
    aiohttp_client: Callable[..., Awaitable[Client]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A copy marked as sending when the gateway died is not sent again; its rule shows unknown."""
    relay = Relay()
    settings = _settings(tmp_path, database_url, relay.port)
    looks = Looks(monkeypatch, forwards_store, "any_due")
    async with rig(settings, aiohttp_client, workers=False) as r:
        cred = await r.credential()
        assert (await r.forward(cred)).status == 201
        # No sender runs: store a message, then fake a crash mid-send.
        await asyncio.to_thread(send_mail, r.port, cred["inbox"], otp_mail("515151"))
        async with r.gw.db.write() as conn:
            await conn.execute(
                update(ForwardOutbox).values(state="sending", lease_until=1.0, attempts=1)
            )
    await relay.start()
    try:
        async with rig(settings, aiohttp_client, headers=r.headers) as r2:
            await eventually(lambda: _status_is(r2, cred, "unknown"))
            assert await outbox(r2.gw) == 0
            await looks.again()  # the sender looked again: a wrong attempt would show
            assert relay.mails == []
    finally:
        await relay.stop()


async def test_a_relay_refusal_is_final_for_5xx(
    tmp_path: Path, database_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """A 5xx from the relay gives the copy up at once (no retry) and the rule says why."""

    class Refusing(Relay):
        async def handle_RCPT(
            self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
        ) -> str:
            return "550 5.1.1 no such user"

    relay = Refusing()
    await relay.start()
    settings = _settings(tmp_path, database_url, relay.port)
    try:
        async with rig(settings, aiohttp_client) as r:
            cred = await r.credential()
            assert (await r.forward(cred)).status == 201
            await asyncio.to_thread(send_mail, r.port, cred["inbox"], otp_mail("626262"))
            await eventually(lambda: _status_is(r, cred, "failed"))
            assert "550" in (await rule_status(r, cred))["last_error"]
            assert await outbox(r.gw) == 0
    finally:
        await relay.stop()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"channel": "email", "to": "not-an-address"}, 422, "invalid"),
        ({"channel": "email", "to": "a@b@example.com"}, 422, "invalid"),
        ({"channel": "email", "to": "root@localhost"}, 422, "invalid"),
        ({"channel": "email", "to": "ops@metadata.google.internal"}, 422, "unsafe_target"),
        ({"channel": "email", "to": "ops@[127.0.0.1]"}, 422, "invalid"),
        ({"channel": "sms", "to": "4155550100"}, 422, "invalid"),
        ({"channel": "sms", "to": "+14155550100"}, 422, "sms_not_configured"),
        ({"channel": "fax", "to": "+14155550100"}, 422, "invalid"),
        ({"channel": "email"}, 422, "invalid"),
    ],
)
async def test_forward_targets_are_validated(
    tmp_path: Path,
    database_url: str,
    aiohttp_client: Callable[..., Awaitable[Client]],
    body: dict[str, str],
    status: int,
    code: str,
) -> None:
    """Bad addresses, internal domains, non-E.164 numbers and unconfigured channels are refused."""
    settings = _settings(tmp_path, database_url, NO_RELAY)
    async with rig(settings, aiohttp_client) as r:
        cred = await r.credential()
        resp = await r.api.post(
            f"/v1/credentials/{cred['id']}/forwards", json=body, headers=r.headers
        )
        assert resp.status == status, await resp.text()
        assert (await resp.json())["error"]["code"] == code


async def test_forward_rules_are_per_tenant_and_limited(
    tmp_path: Path, database_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """Another tenant sees 404; a credential has at most 10 rules; a rule can be deleted."""
    settings = _settings(tmp_path, database_url, NO_RELAY)
    async with rig(settings, aiohttp_client) as r:
        cred = await r.credential()
        ids = []
        for i in range(10):
            resp = await r.forward(cred, f"p{i}@example.com")
            assert resp.status == 201
            ids.append((await resp.json())["id"])
        assert (await r.forward(cred, "eleven@example.com")).status == 409
        resp = await r.api.post("/v1/tenants", json={"name": "other"}, headers=ADMIN)
        other = bearer((await resp.json())["api_key"])
        url = f"/v1/credentials/{cred['id']}/forwards"
        assert (await r.api.get(url, headers=other)).status == 404
        assert (await r.api.delete(f"{url}/{ids[0]}", headers=other)).status == 404
        assert (await r.api.get(f"{url}/{ids[0]}", headers=r.headers)).status == 200
        assert (await r.api.delete(f"{url}/{ids[0]}", headers=r.headers)).status == 204
        assert (await r.api.get(f"{url}/{ids[0]}", headers=r.headers)).status == 404


async def test_a_queued_copy_is_sealed_at_rest(
    tmp_path: Path, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """While a copy waits for the relay, neither its code nor its text is in the database file."""
    db_path = tmp_path / "data" / "otpgate.db"
    settings = _settings(tmp_path, f"sqlite:///{db_path}", NO_RELAY)
    async with rig(settings, aiohttp_client, workers=False) as r:
        cred = await r.credential()
        assert (await r.forward(cred)).status == 201
        await asyncio.to_thread(send_mail, r.port, cred["inbox"], otp_mail("918273"))
        assert await outbox(r.gw) == 1
    raw = b"".join(p.read_bytes() for p in db_path.parent.glob("otpgate.db*"))
    assert b"918273" not in raw
    assert b"verification code" not in raw.lower()


async def test_an_sms_forward_goes_through_twilios_messages_api(
    tmp_path: Path, database_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """A text to the credential's number is copied by SMS from it, via the Messages API."""
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator

    from .twilio_fake import TwilioFake

    async with TwilioFake() as twilio:
        settings = make_settings(
            tmp_path,
            database_url,
            OTPGATE_PUBLIC_URL="https://otp.example.com",
            **twilio.env(),
        )
        async with rig(settings, aiohttp_client) as r:
            cred = await r.credential()
            url = f"/v1/credentials/{cred['id']}"
            resp = await r.api.put(
                f"{url}/phone", json={"phone_number": "+14155550142"}, headers=r.headers
            )
            assert resp.status == 200
            resp = await r.api.post(
                f"{url}/forwards", json={"channel": "sms", "to": "+447700900123"}, headers=r.headers
            )
            assert resp.status == 201, await resp.text()
            params = {
                "MessageSid": "SM" + "a" * 32,
                "AccountSid": twilio.account_sid,
                "From": "+15005550006",
                "To": "+14155550142",
                "Body": "Your Bank code is 880022",
            }
            signature = RequestValidator(twilio.auth_token).compute_signature(
                "https://otp.example.com/sms/twilio", params
            )
            resp = await r.api.post(
                "/sms/twilio",
                data=urlencode(params),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": signature,
                },
            )
            assert resp.status == 200
            (sent,) = await twilio.wait_for_messages(1)
            assert sent.form["To"] == "+447700900123"
            assert sent.form["From"] == "+14155550142"
            assert "880022" in sent.form["Body"]
            got = await r.api.get(f"{url}/code", headers=r.headers)
            assert (await got.json())["code"] == "880022"
            await eventually(lambda: _status_is(r, cred, "sent"))


async def test_shutting_down_finishes_a_copy_being_sent(
    tmp_path: Path, database_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """Stopping while the relay is slow to answer DATA waits for it: the copy is sent, once."""

    class Slow(Relay):
        async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
            self.started.set()
            await asyncio.sleep(1.0)  # the behaviour: a relay slow to answer DATA
            return await super().handle_DATA(server, session, envelope)

    relay = Slow()
    relay.started = asyncio.Event()  # type: ignore[attr-defined]
    await relay.start()
    settings = _settings(tmp_path, database_url, relay.port)
    try:
        async with rig(settings, aiohttp_client) as r:
            cred = await r.credential()
            assert (await r.forward(cred)).status == 201
            await asyncio.to_thread(send_mail, r.port, cred["inbox"], otp_mail("135790"))
            await asyncio.wait_for(relay.started.wait(), 10)  # type: ignore[attr-defined]
            # Leaving the block stops the workers while DATA is still unanswered.
        async with rig(settings, aiohttp_client, workers=False, headers=r.headers) as r2:
            assert (await rule_status(r2, cred))["last_status"] == "sent"
            assert await outbox(r2.gw) == 0
        assert len(relay.mails) == 1
    finally:
        await relay.stop()


async def test_a_rule_deleted_after_the_route_was_read_gets_no_copy(
    tmp_path: Path, database_url: str
) -> None:
    """A message whose route still names a rule deleted a moment ago (on another replica, say)
    is stored with its code; only the deleted rule's copy is left out."""
    async with opened(_settings(tmp_path, database_url, NO_RELAY)) as gateway:
        await _rule_deleted_after_the_route_was_read(gateway)


async def _rule_deleted_after_the_route_was_read(gateway: Gateway) -> None:
    services = gateway.services
    tenant = await services.tenants.create("acme")
    cred = await services.credentials.create(tenant.id, name="c", username=None, password=None)
    await services.credentials.set_phone(tenant.id, cred.id, "+14155550180")
    kept = await services.forward_rules.create(
        tenant.id, cred.id, channel="email", to="a@example.com"
    )
    gone = await services.forward_rules.create(
        tenant.id, cred.id, channel="email", to="b@example.com"
    )
    route = await services.inbound.route_for_phone("+14155550180")
    assert route is not None and set(route.forwards) == {kept.id, gone.id}
    async with gateway.db.write() as conn:  # as another replica would: this one's cache stays
        await conn.execute(delete(Forward).where(col(Forward.id) == gone.id))
    message = Message(
        channel="sms", sender="+15005550006", sender_domain="", subject="", text="code 771203"
    )
    assert await services.inbound.store(message, [route], seen=("twilio", "SM" + "7" * 32)) == [
        "code"
    ]
    async with gateway.db.read() as conn:
        rows = (await conn.execute(select(ForwardOutbox.forward_id))).scalars().all()
    assert rows == [kept.id]
    code = await services.codes.code(tenant.id, cred.id, wait=0)
    assert code is not None and code.code == "771203"
