"""Sign-in links arriving by real SMTP mail and Twilio-signed texts, handed out once; and
``code.unsolicited`` when a code or link arrives while nobody signs in to its credential."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import select, text
from twilio.request_validator import RequestValidator

from gateway.app import Gateway
from gateway.services.inbound import Message
from gateway.settings import Settings
from gateway.store.models import WebhookDelivery

from .helpers import (
    SmtpRig,
    make_settings,
    otp_mail,
    parked,
    replica_pair,
    smtp_rig,
)

LINK = "https://app.example.com/auth/magic?token=Zq8r2LmN4pXv7TbW9yKc3HdF&amp;next=%2Fhome"
CLICKED = LINK.replace("&amp;", "&")
TOKEN = "twilio-auth-token-0123456789abcdef"
ACCOUNT = "AC" + "0" * 31 + "1"
PUBLIC = "https://otp.example.com"


def sign_in_mail(url: str = LINK, code: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Example <no-reply@app.example.com>"
    msg["To"] = "agent@inbox.localhost"
    msg["Subject"] = "Sign in to Example"
    extra = f"<p>Or enter this code: <b>{code}</b></p>" if code else ""
    msg.set_content(
        "<html><body><p>Hello,</p><p>Click the button below to sign in to Example.</p>"
        f'<p><a href="{url}" style="background:#1a56db;color:#fff;padding:12px">Sign in</a></p>'
        f"{extra}<p>If you did not ask for this, ignore this mail.</p>"
        '<p><a href="https://app.example.com/unsubscribe?u=1">Unsubscribe</a> · '
        '<a href="https://app.example.com/privacy">Privacy</a></p></body></html>',
        subtype="html",
    )
    return msg


def newsletter() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Example <news@app.example.com>"
    msg["To"] = "agent@inbox.localhost"
    msg["Subject"] = "What's new in December"
    msg.set_content(
        "<html><body><h1>Our winter sale</h1><p>Save 30% on every plan this week.</p>"
        '<p><a href="https://app.example.com/pricing?utm=1">Shop now</a></p>'
        '<p><a href="https://app.example.com/unsubscribe?u=1">Unsubscribe</a></p></body></html>',
        subtype="html",
    )
    return msg


@pytest.fixture
async def rig(settings: Settings, aiohttp_client: Callable[..., Any]) -> AsyncIterator[SmtpRig]:
    async with smtp_rig(settings, aiohttp_client, ingest=True) as r:
        yield r


async def _queued(gateway: Gateway, event: str) -> list[dict[str, Any]]:
    stmt = select(WebhookDelivery.event, WebhookDelivery.body)
    async with gateway.db.read() as conn:
        rows = (await conn.execute(stmt)).all()
    return [json.loads(r.body)["data"] for r in rows if r.event == event]


async def _subscribe(rig: SmtpRig, *events: str) -> None:
    hook = {"url": "https://hooks.example.com/otp", "events": list(events)}
    resp = await rig.client.post("/v1/webhooks", json=hook, headers=rig.headers)
    assert resp.status == 201


async def test_a_sign_in_link_by_mail_is_handed_out_once(rig: SmtpRig) -> None:
    await _subscribe(rig, "link.received", "code.received")
    cred = await rig.credential()
    url = f"/v1/credentials/{cred['id']}/link"
    assert (await rig.client.get(url, headers=rig.headers)).status == 204
    await rig.send(cred["inbox"], sign_in_mail())
    resp = await rig.client.get(url + "?wait=10", headers=rig.headers)
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    assert body["url"] == CLICKED  # what a person clicks, unchanged
    assert body["kind"] == "sign_in" and body["source"] == "email"
    assert body["sender"] == "no-reply@app.example.com"
    assert (await rig.client.get(url, headers=rig.headers)).status == 204  # once
    # No code in it: the code route has nothing.
    code = await rig.client.get(f"/v1/credentials/{cred['id']}/code", headers=rig.headers)
    assert code.status == 204
    # Metadata only in the webhook; sealed in the store; read recorded.
    (event,) = await _queued(rig.gateway, "link.received")
    assert event["credential_id"] == cred["id"] and event["kind"] == "sign_in"
    assert "Zq8r2LmN4pXv7TbW9yKc3HdF" not in json.dumps(event)
    assert await _queued(rig.gateway, "code.received") == []
    metrics = await (await rig.client.get("/metrics")).text()
    assert 'otpgate_messages_total{channel="email",outcome="link"} 1' in metrics
    tenant = (await rig.gateway.services.tenants.authenticate(
        rig.headers["Authorization"].split()[1])).tenant_id  # fmt: skip
    assert tenant is not None
    events = (await rig.gateway.services.audit.page(tenant)).events
    assert [e["action"] for e in events][-1] == "link.read"
    assert "Zq8r2LmN4pXv7TbW9yKc3HdF" not in json.dumps(events)


async def test_a_mail_with_a_code_and_a_link_gives_both(rig: SmtpRig) -> None:
    cred = await rig.credential()
    await rig.send(cred["inbox"], sign_in_mail(code="482916"))
    base = f"/v1/credentials/{cred['id']}"
    got = await (await rig.client.get(f"{base}/code?wait=10", headers=rig.headers)).json()
    assert got["code"] == "482916"
    link = await (await rig.client.get(f"{base}/link", headers=rig.headers)).json()
    assert link["url"] == CLICKED


async def test_a_newsletter_yields_no_link(rig: SmtpRig) -> None:
    cred = await rig.credential()
    await rig.send(cred["inbox"], newsletter())
    resp = await rig.client.get(f"/v1/credentials/{cred['id']}/link?wait=1", headers=rig.headers)
    assert resp.status == 204
    metrics = await (await rig.client.get("/metrics")).text()
    assert 'otpgate_messages_total{channel="email",outcome="no_code"} 1' in metrics


async def test_the_link_is_sealed_at_rest(rig: SmtpRig) -> None:
    cred = await rig.credential()
    await rig.send(cred["inbox"], sign_in_mail())
    async with rig.gateway.db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM received_codes"))).all()
    assert len(rows) == 1
    assert "Zq8r2LmN4pXv7TbW9yKc3HdF" not in repr(rows)


async def test_a_login_takes_only_newer_links_and_rejects(rig: SmtpRig) -> None:
    cred = await rig.credential()
    h = rig.headers
    await rig.send(
        cred["inbox"], sign_in_mail(url="https://app.example.com/l?token=OLDold0123456789")
    )
    resp = await rig.client.post(f"/v1/credentials/{cred['id']}/logins", json={}, headers=h)
    login = await resp.json()
    url = f"/v1/logins/{login['id']}/link"
    assert (await rig.client.get(url, headers=h)).status == 204
    await rig.send(
        cred["inbox"], sign_in_mail(url="https://app.example.com/l?token=NEWnew0123456789")
    )
    got = await (await rig.client.get(url + "?wait=10", headers=h)).json()
    assert got["url"].endswith("NEWnew0123456789")
    assert (await rig.client.post(f"/v1/logins/{login['id']}/reject", headers=h)).status == 204
    assert (await rig.client.get(url, headers=h)).status == 204
    await rig.send(
        cred["inbox"], sign_in_mail(url="https://app.example.com/l?token=THIRDd0123456789")
    )
    got = await (await rig.client.get(url + "?wait=10", headers=h)).json()
    assert got["url"].endswith("THIRDd0123456789")


async def test_a_twilio_text_with_a_link(tmp_path: Path, database_url: str,
                                         aiohttp_client: Callable[..., Any]) -> None:  # fmt: skip
    settings = make_settings(
        tmp_path,
        database_url,
        OTPGATE_TWILIO_AUTH_TOKEN=TOKEN,
        OTPGATE_TWILIO_ACCOUNT_SID=ACCOUNT,
        OTPGATE_PUBLIC_URL=PUBLIC,
    )
    async with smtp_rig(settings, aiohttp_client) as rig:
        cred = await rig.credential()
        h = rig.headers
        phone = "+14155550142"
        resp = await rig.client.put(f"/v1/credentials/{cred['id']}/phone",
                                    json={"phone_number": phone}, headers=h)  # fmt: skip
        assert resp.status == 200
        sms = "Example: tap to sign in https://ex.co/s/Hq7Lm2Zr9Tb4 (expires in 10 min)"
        params = {
            "MessageSid": "SM" + "a" * 32,
            "AccountSid": ACCOUNT,
            "From": "+15005550006",
            "To": phone,
            "Body": sms,
            "NumMedia": "0",
        }
        signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/sms/twilio", params)
        resp = await rig.client.post(
            "/sms/twilio",
            data=urlencode(params),
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "X-Twilio-Signature": signature},
        )  # fmt: skip
        assert resp.status == 200
        got = await rig.client.get(f"/v1/credentials/{cred['id']}/link?wait=5", headers=h)
        body = await got.json()
        assert (body["url"], body["source"]) == ("https://ex.co/s/Hq7Lm2Zr9Tb4", "sms")


# -- code.unsolicited ----------------------------------------------------------------------


async def test_a_code_nobody_signs_in_for_is_reported(rig: SmtpRig) -> None:
    await _subscribe(rig, "code.unsolicited")
    cred = await rig.credential()
    await rig.send(cred["inbox"], otp_mail("111222"))
    (event,) = await _queued(rig.gateway, "code.unsolicited")
    assert event["credential_id"] == cred["id"]
    assert (event["channel"], event["sender_domain"]) == ("email", "service.example")
    assert set(event) == {"credential_id", "channel", "sender_domain", "received_at"}
    assert "111222" not in json.dumps(event)


async def test_a_code_awaited_is_not_reported(rig: SmtpRig) -> None:
    await _subscribe(rig, "code.unsolicited")
    h = rig.headers
    cred = await rig.credential()
    # An agent long-polling the credential.
    waiting = asyncio.create_task(
        rig.client.get(f"/v1/credentials/{cred['id']}/code?wait=20", headers=h)
    )
    await parked(rig.gateway, cred["id"])
    await asyncio.sleep(0.1)  # its wait is recorded
    await rig.send(cred["inbox"], otp_mail("333444"))
    assert (await (await waiting).json())["code"] == "333444"
    # An open login.
    resp = await rig.client.post(f"/v1/credentials/{cred['id']}/logins", json={}, headers=h)
    login = await resp.json()
    await rig.send(cred["inbox"], sign_in_mail())
    assert await _queued(rig.gateway, "code.unsolicited") == []
    # Finished: the next one is reported.
    await rig.client.post(f"/v1/logins/{login['id']}/finish", json={"outcome": "succeeded"},
                          headers=h)  # fmt: skip
    await rig.send(cred["inbox"], otp_mail("555666"))
    assert len(await _queued(rig.gateway, "code.unsolicited")) == 1


async def test_a_shared_account_can_opt_out(rig: SmtpRig) -> None:
    await _subscribe(rig, "code.unsolicited")
    cred = await rig.credential()
    url = f"/v1/credentials/{cred['id']}"
    resp = await rig.client.patch(url, json={"report_unsolicited": False}, headers=rig.headers)
    assert resp.status == 200 and (await resp.json())["report_unsolicited"] is False
    resp = await rig.client.patch(url, json={"report_unsolicited": None}, headers=rig.headers)
    assert resp.status == 422
    await rig.send(cred["inbox"], otp_mail("777888"))
    assert await _queued(rig.gateway, "code.unsolicited") == []


async def test_a_wait_on_another_replica_counts(tmp_path: Path, postgres_database: str) -> None:
    """An agent waiting on replica B: a code stored by replica A is not unsolicited."""
    async with replica_pair(tmp_path, postgres_database) as (a, b):
        tenant = await a.services.tenants.create("acme")
        owner = await a.services.tenants.authenticate(tenant.api_key)
        await a.services.webhook_endpoints.create(
            tenant.id, url="https://hooks.example.com/otp", events=["code.unsolicited"]
        )
        cred = await a.services.credentials.create(
            tenant.id, name="c", username=None, password=None
        )
        route = await a.services.inbound.route_for_inbox(cred.inbox.partition("@")[0])
        assert route is not None and owner.tenant_id == tenant.id
        message = Message("email", "x@bank.example", "bank.example", "Code", "Your code is 919293.")
        waiting = asyncio.create_task(b.services.codes.code(tenant.id, cred.id, wait=20))
        await parked(b, cred.id)
        await asyncio.sleep(0.2)
        await a.services.inbound.accept(message, [route])
        got = await asyncio.wait_for(waiting, 20)
        assert got is not None and got.code == "919293"
        assert await _queued(a, "code.unsolicited") == []
        # Nobody waits now (once B has removed its record of the wait, which it does just
        # after the answer): the next one is reported.
        await b.services.codes.waits.settle()
        await a.services.inbound.accept(message, [route])
        assert len(await _queued(a, "code.unsolicited")) == 1
