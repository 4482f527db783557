"""Every event through the real routes: mail, Twilio, Android, authenticator, interactions.

One gateway with its SMTP listener, HTTP API and background workers; a webhook
receiver on loopback subscribed to every event.  Canary codes and secrets are
fed in through every route a code or secret can enter by, and none of them
may appear in any byte delivered to the receiver.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp.test_utils import TestClient
from twilio.request_validator import RequestValidator

from .helpers import (
    ADMIN,
    ADMIN_KEY,
    Receiver,
    bearer,
    eventually,
    listening,
    make_settings,
    opened,
    otp_mail,
    port_of,
    send_mail,
    verifies,
)

Client = TestClient[Any, Any]
TWILIO_TOKEN = "canary-twilio-token-0b1c2d3e4f"
PUBLIC = "https://otp.example.com"


async def test_events_from_every_route_carry_metadata_only(
    tmp_path: Path, database_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """Each route's event is delivered and signed; no code or secret is in any delivered byte."""
    receiver = await Receiver().start()
    smtp = listening()
    settings = make_settings(
        tmp_path,
        database_url,
        OTPGATE_SMTP=f"127.0.0.1:{port_of(smtp)}",
        OTPGATE_SMTP_WORKER="0",
        OTPGATE_TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        OTPGATE_PUBLIC_URL=PUBLIC,
        OTPGATE_ALLOW_PRIVATE_TARGETS="1",
        OTPGATE_INTERACTION_TTL="3",
    )
    try:
        async with opened(settings, smtp=smtp) as gw:
            api = await aiohttp_client(gw.app)
            resp = await api.post("/v1/tenants", json={"name": "acme"}, headers=ADMIN)
            tenant_key = (await resp.json())["api_key"]
            h = bearer(tenant_key)
            resp = await api.post(
                "/v1/webhooks",
                json={
                    "url": receiver.url,
                    "events": [
                        "code.received",
                        "interaction.code_required",
                        "interaction.code_submitted",
                        "interaction.expired",
                    ],
                },
                headers=h,
            )
            assert resp.status == 201, await resp.text()
            webhook_secret = (await resp.json())["secret"]

            password, totp_secret = "canary-Pa55-word-91xq", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
            signing_key = "canary-android-key-77aa21"
            codes = {"email": "904417", "sms": "771522", "android": "660311", "user": "552290"}
            resp = await api.post(
                "/v1/credentials", json={"name": "Bank", "password": password}, headers=h
            )
            cred = await resp.json()
            url = f"/v1/credentials/{cred['id']}"
            await api.put(f"{url}/phone", json={"phone_number": "+14155550170"}, headers=h)
            await api.put(
                f"{url}/authenticator", json={"secret": totp_secret, "kind": "totp"}, headers=h
            )
            resp = await api.post(
                f"{url}/sms-devices",
                json={"device_id": "canary-phone", "signing_key": signing_key},
                headers=h,
            )
            assert resp.status == 201
            totp = (await (await api.get(f"{url}/code", headers=h)).json())["code"]

            async with gw.background():
                # Mail, through the real SMTP listener.
                await asyncio.to_thread(
                    send_mail, settings.smtp.port, cred["inbox"], otp_mail(codes["email"])
                )
                got = await (await api.get(f"{url}/code?source=email&wait=5", headers=h)).json()
                assert got["code"] == codes["email"]
                # A text from Twilio, signed.
                params = {
                    "MessageSid": "SM" + "c" * 32,
                    "From": "+15005550006",
                    "To": "+14155550170",
                    "Body": f"Your Bank code is {codes['sms']}",
                }
                signature = RequestValidator(TWILIO_TOKEN).compute_signature(
                    PUBLIC + "/sms/twilio", params
                )
                resp = await api.post(
                    "/sms/twilio",
                    data=urlencode(params),
                    headers={
                        "Content-Type": "application/x-www-form-urlencoded",
                        "X-Twilio-Signature": signature,
                    },
                )
                assert resp.status == 200
                got = await (await api.get(f"{url}/code?source=sms", headers=h)).json()
                assert got["code"] == codes["sms"]
                # A text from an Android phone, signed.
                raw = json.dumps(
                    {
                        "deviceId": "canary-phone",
                        "event": "sms:received",
                        "id": "ev-canary",
                        "payload": {
                            "message": f"{codes['android']} is your Bank code",
                            "phoneNumber": "6505551212",
                            "simNumber": 1,
                        },
                    }
                ).encode()
                stamp = str(int(time.time()))
                sig = hmac.new(
                    signing_key.encode(), raw + stamp.encode(), hashlib.sha256
                ).hexdigest()
                resp = await api.post(
                    "/sms/android",
                    data=raw,
                    headers={"X-Signature": sig, "X-Timestamp": stamp},
                )
                assert resp.status == 200, await resp.text()
                got = await (await api.get(f"{url}/code?source=sms", headers=h)).json()
                assert got["code"] == codes["android"]
                # A person answers one interaction through its page; another expires.
                answered = await (await api.post(f"{url}/interactions", json={}, headers=h)).json()
                resp = await api.post(
                    urlsplit(answered["submit_url"]).path,
                    data={"code": codes["user"]},
                    headers={"Origin": PUBLIC},
                )
                assert resp.status == 200, await resp.text()
                got = await (
                    await api.get(f"/v1/interactions/{answered['id']}/code", headers=h)
                ).json()
                assert got["code"] == codes["user"]
                await api.post(f"{url}/interactions", json={"prompt": "left alone"}, headers=h)

                def count(event: str) -> int:
                    return sum(1 for s in receiver.ok() if json.loads(s.body)["type"] == event)

                async def all_delivered() -> bool:
                    return (
                        count("code.received") == 3
                        and count("interaction.code_required") == 2
                        and count("interaction.code_submitted") == 1
                        and count("interaction.expired") >= 1
                    )

                await eventually(all_delivered, within=30)
    finally:
        await receiver.stop()

    required = [
        json.loads(s.body)["data"]
        for s in receiver.ok()
        if json.loads(s.body)["type"] == "interaction.code_required"
    ]
    assert answered["submit_url"] in [d["submit_url"] for d in required]
    sources = sorted(
        json.loads(s.body)["data"]["source"]
        for s in receiver.ok()
        if json.loads(s.body)["type"] == "code.received"
    )
    assert sources == ["email", "sms", "sms"]
    for seen in receiver.seen:
        assert verifies(webhook_secret, seen)
    needles = [
        *codes.values(),
        totp,
        password,
        totp_secret,
        signing_key,
        TWILIO_TOKEN,
        tenant_key,
        ADMIN_KEY,
        webhook_secret,
        webhook_secret.removeprefix("whsec_"),
        base64.b64decode(webhook_secret.removeprefix("whsec_")).hex(),
        "Your Bank code",  # message text
        "verification code",  # the mail's text
    ]
    wire = b"\n".join(s.raw for s in receiver.seen).lower()
    for needle in needles:
        assert needle.lower().encode() not in wire, needle
