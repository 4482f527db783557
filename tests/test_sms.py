"""Inbound SMS: Twilio's signed webhook and the SMS Gateway for Android route, end to end."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

import sms.twilio
from gateway.app import Gateway
from gateway.errors import ConfigError
from gateway.ingest import worker as ingest_worker
from gateway.ingest.worker import IngestWorker
from gateway.store.models import ForwardOutbox, InboundSeen, ReceivedCode

from .helpers import (
    ADMIN,
    bearer,
    eventually,
    make_settings,
    opened,
    parked,
)

Client = TestClient[Any, Any]
TOKEN = "twilio-auth-token-0123456789abcdef"
ACCOUNT = "AC" + "0" * 31 + "1"
PUBLIC = "https://otp.example.com"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def gw(
    tmp_path: Path, database_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[Gateway]:
    """The gateway, with the ingest worker process when the test also asks for ``worker``."""
    settings = make_settings(
        tmp_path,
        database_url,
        OTPGATE_TWILIO_AUTH_TOKEN=TOKEN,
        OTPGATE_TWILIO_ACCOUNT_SID=ACCOUNT,
        OTPGATE_PUBLIC_URL=PUBLIC,
        OTPGATE_SMS_RATE_LIMIT="5",
    )
    async with opened(settings, ingest="worker" in request.fixturenames) as gateway:
        yield gateway


@pytest.fixture
async def api(gw: Gateway, aiohttp_client: Callable[..., Awaitable[Client]]) -> Client:
    return await aiohttp_client(gw.app, server_kwargs={"handler_cancellation": True})


async def _tenant(api: Client) -> dict[str, str]:
    resp = await api.post("/v1/tenants", json={"name": "acme"}, headers=ADMIN)
    return bearer((await resp.json())["api_key"])


async def _credential(api: Client, headers: dict[str, str], phone: str | None) -> str:
    resp = await api.post("/v1/credentials", json={"name": "bank"}, headers=headers)
    cred_id: str = (await resp.json())["id"]
    if phone:
        resp = await api.put(
            f"/v1/credentials/{cred_id}/phone", json={"phone_number": phone}, headers=headers
        )
        assert resp.status == 200, await resp.text()
    return cred_id


_sid_counter = iter(range(10**6))


def twilio_params(to: str, body: str, **extra: str) -> dict[str, str]:
    sid = f"SM{next(_sid_counter):032x}"
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT,
        "From": "+15005550006",
        "To": to,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def sign(params: Any, url: str = PUBLIC + "/sms/twilio", token: str = TOKEN) -> str:
    """The signature Twilio computes, by the twilio package's own algorithm."""
    return RequestValidator(token).compute_signature(url, params)


async def post_twilio(
    api: Client, params: dict[str, str], signature: str | None = "", **kw: Any
) -> Any:
    headers = dict(FORM)
    if signature == "":
        signature = sign(params)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return await api.post("/sms/twilio", data=urlencode(params), headers=headers, **kw)


async def stored(gw: Gateway) -> int:
    async with gw.db.read() as conn:
        stmt = select(func.count()).select_from(ReceivedCode)
        return int((await conn.execute(stmt)).scalar_one())


async def test_signed_text_reaches_a_waiting_agent_once(api: Client, gw: Gateway) -> None:
    """A text signed by Twilio's algorithm gets empty TwiML; its code reaches the agent once."""
    headers = await _tenant(api)
    cred = await _credential(api, headers, "+14155550100")
    waiting = asyncio.create_task(api.get(f"/v1/credentials/{cred}/code?wait=10", headers=headers))
    await parked(gw, cred)
    resp = await post_twilio(api, twilio_params("+14155550100", "Your Bank code is 482913"))
    assert resp.status == 200
    assert resp.content_type == "text/xml"
    assert (await resp.text()).endswith("<Response/>")
    got = await waiting
    assert got.status == 200
    body = await got.json()
    assert (body["code"], body["source"], body["sender"]) == ("482913", "sms", "+15005550006")
    again = await api.get(f"/v1/credentials/{cred}/code", headers=headers)
    assert again.status == 204


async def test_an_ambiguous_text_hands_out_nothing_and_is_counted(api: Client, gw: Gateway) -> None:
    """Two secrets named alike: no code is handed out, the message counts as ambiguous."""
    headers = await _tenant(api)
    cred = await _credential(api, headers, "+14155550101")
    text = "Your PIN is 4829 and your code is 731905"
    assert (await post_twilio(api, twilio_params("+14155550101", text))).status == 200
    got = await api.get(f"/v1/credentials/{cred}/code", headers=headers)
    assert got.status == 204
    metrics = await (await api.get("/metrics")).text()
    assert 'otpgate_messages_total{channel="sms",outcome="ambiguous"} 1' in metrics
    assert 'otpgate_messages_total{channel="sms",outcome="no_code"} 0' in metrics


@pytest.mark.parametrize(
    "how", ["missing", "forged", "other-token", "retargeted-path", "retargeted-host", "tampered"]
)
async def test_bad_signatures_are_refused_and_nothing_is_stored(
    api: Client, gw: Gateway, how: str
) -> None:
    """Missing, forged, wrong-key, re-targeted and tampered signatures get 403 and store nothing."""
    headers = await _tenant(api)
    await _credential(api, headers, "+14155550101")
    params = twilio_params("+14155550101", "code 111222")
    signature: str | None = {
        "missing": None,
        "forged": "bm90IGEgc2lnbmF0dXJl",
        "other-token": sign(params, token="another-token-0123456789abcdef"),
        "retargeted-path": sign(params, PUBLIC + "/sms/other"),
        "retargeted-host": sign(params, "https://evil.example/sms/twilio"),
        "tampered": sign(params),
    }[how]
    if how == "tampered":
        params = {**params, "Body": "code 999999"}
    resp = await post_twilio(api, params, signature)
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "bad_signature"
    assert await stored(gw) == 0


async def test_signature_covers_the_query_string(api: Client, gw: Gateway) -> None:
    """The URL checked is the public URL plus the request's own path and query."""
    headers = await _tenant(api)
    cred = await _credential(api, headers, "+14155550102")
    params = twilio_params("+14155550102", "Your code: 314159")
    url = PUBLIC + "/sms/twilio?route=a"
    resp = await api.post(
        "/sms/twilio?route=a",
        data=urlencode(params),
        headers={**FORM, "X-Twilio-Signature": sign(params, url)},
    )
    assert resp.status == 200
    bad = twilio_params("+14155550102", "Your code: 271828")
    resp = await api.post(
        "/sms/twilio?route=b",
        data=urlencode(bad),
        headers={**FORM, "X-Twilio-Signature": sign(bad, url)},
    )
    assert resp.status == 403
    got = await api.get(f"/v1/credentials/{cred}/code", headers=headers)
    assert (await got.json())["code"] == "314159"


async def test_multi_valued_parameters_are_signed_too(api: Client, gw: Gateway) -> None:
    """Every value of a repeated parameter is covered: changing one breaks the signature."""
    headers = await _tenant(api)
    await _credential(api, headers, "+14155550103")
    base = twilio_params("+14155550103", "code 123987", NumMedia="2")
    pairs = [
        *base.items(),
        ("MediaUrl0", "https://m.example/a"),
        ("MediaUrl0", "https://m.example/b"),
    ]
    from multidict import MultiDict

    signature = sign(MultiDict(pairs))
    ok = await api.post(
        "/sms/twilio", data=urlencode(pairs), headers={**FORM, "X-Twilio-Signature": signature}
    )
    assert ok.status == 200
    pairs2 = [*twilio_params("+14155550103", "code 123987").items()]
    pairs2 += [("MediaUrl0", "https://m.example/a"), ("MediaUrl0", "https://m.example/c")]
    bad = await api.post(
        "/sms/twilio", data=urlencode(pairs2), headers={**FORM, "X-Twilio-Signature": signature}
    )
    assert bad.status == 403


async def test_the_same_message_sid_twice_is_stored_once(api: Client, gw: Gateway) -> None:
    """Twilio's retries and fallback URL deliver duplicates: later ones get 200, stored once."""
    headers = await _tenant(api)
    cred = await _credential(api, headers, "+14155550104")
    params = twilio_params("+14155550104", "Your code is 556677")
    first, second = await asyncio.gather(post_twilio(api, params), post_twilio(api, params))
    assert (first.status, second.status) == (200, 200)
    third = await post_twilio(api, params)
    assert third.status == 200
    assert await stored(gw) == 1
    got = await api.get(f"/v1/credentials/{cred}/code", headers=headers)
    assert (await got.json())["code"] == "556677"
    assert await stored(gw) == 0
    # Even after the code was handed out, a late redelivery is not stored again.
    assert (await post_twilio(api, params)).status == 200
    assert await stored(gw) == 0
    async with gw.db.read() as conn:
        seen = (await conn.execute(select(func.count()).select_from(InboundSeen))).scalar_one()
    assert seen == 1


async def test_unowned_number_is_answered_200_and_counted(api: Client, gw: Gateway) -> None:
    """A text for a number no credential owns is acknowledged (not retried) and counted."""
    resp = await post_twilio(api, twilio_params("+14155559999", "code 123456"))
    assert resp.status == 200
    metrics = await (await api.get("/metrics")).text()
    assert 'otpgate_messages_total{channel="sms",outcome="rejected"} 1' in metrics


async def test_wrong_account_sid_is_refused(api: Client, gw: Gateway) -> None:
    """With OTPGATE_TWILIO_ACCOUNT_SID set, a request for another account is refused."""
    headers = await _tenant(api)
    await _credential(api, headers, "+14155550105")
    params = twilio_params("+14155550105", "code 123456", AccountSid="AC" + "f" * 32)
    resp = await post_twilio(api, params)
    assert resp.status == 403
    assert await stored(gw) == 0


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"Body": "x" * 1601}, 413),
        ({"Body": None}, 400),
        ({"MessageSid": "not-a-sid"}, 400),
        ({"To": "4155550106"}, 400),
        ({"Unexpected": "1"}, 400),
    ],
)
async def test_bad_input_is_refused_with_nothing_stored(
    api: Client, gw: Gateway, change: dict[str, str | None], status: int
) -> None:
    """Over-long bodies, missing fields, bad ids and unknown parameters get a 4xx, even signed."""
    headers = await _tenant(api)
    await _credential(api, headers, "+14155550106")
    params: dict[str, str] = twilio_params("+14155550106", "code 123456")
    for k, v in change.items():
        if v is None:
            params.pop(k)
        else:
            params[k] = v
    resp = await post_twilio(api, params)
    assert resp.status == status, await resp.text()
    assert "error" in await resp.json()
    assert await stored(gw) == 0


async def test_non_utf8_and_non_form_bodies_are_refused(api: Client, gw: Gateway) -> None:
    """A body that is not UTF-8 is 400; a JSON body is 400; an oversized one 413."""
    resp = await api.post(
        "/sms/twilio", data=b"Body=%FF%FE&To=%2B1", headers={**FORM, "X-Twilio-Signature": "x"}
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "bad_encoding"
    resp = await api.post("/sms/twilio", json={"Body": "1"}, headers={"X-Twilio-Signature": "x"})
    assert resp.status == 400
    resp = await api.post(
        "/sms/twilio", data=b"Body=" + b"a" * 40_000, headers={**FORM, "X-Twilio-Signature": "x"}
    )
    assert resp.status == 413
    assert await stored(gw) == 0


def test_form_parser_agrees_with_parse_qsl() -> None:
    """The bytes parser gives what strict ``parse_qsl`` gives, pairs or error, on any body."""
    rng = random.Random(4)
    atoms = ["a", "Body", "=", "&", "+", "%", "%2B", "%3D", "%26", "%C3%A9", "%E2%82%AC",
             "%FF", "%C3", "%zz", "%4", "~", " ", "\u00e9", ";"]  # fmt: skip
    bodies = [b"", b"=", b"&", b"a", b"a=", b"=b", b"a=b=c", b"a=1&&b=2", b"&".join([b"x=1"] * 101)]
    bodies += ["".join(rng.choices(atoms, k=rng.randint(1, 12))).encode() for _ in range(5000)]
    for raw in bodies:
        try:
            expected: Any = parse_qsl(
                raw.decode("ascii"),
                keep_blank_values=True,
                strict_parsing=bool(raw),
                encoding="utf-8",
                errors="strict",
                max_num_fields=sms.twilio.MAX_PARAMS,
            )
        except ValueError as exc:  # UnicodeDecodeError included
            expected = type(exc)
        try:
            got: Any = sms.twilio.parse_form(raw)
        except ValueError as exc:
            got = type(exc)
        assert got == expected, raw


async def test_a_form_sent_in_pieces_is_read_whole(api: Client, gw: Gateway) -> None:
    """A form that arrives in several chunks is read to its end before the signature is checked."""
    headers = await _tenant(api)
    cred = await _credential(api, headers, "+14155550144")
    params = twilio_params("+14155550144", "Your code is 271828. " + "Padding text. " * 60)
    body = urlencode(params).encode()

    async def pieces() -> AsyncIterator[bytes]:
        for at in range(0, len(body), 100):
            yield body[at : at + 100]
            await asyncio.sleep(0.01)  # the behaviour: the pieces come apart in time

    resp = await api.post(
        "/sms/twilio", data=pieces(), headers={**FORM, "X-Twilio-Signature": sign(params)}
    )
    assert resp.status == 200, await resp.text()
    got = await api.get(f"/v1/credentials/{cred}/code", headers=headers)
    assert (await got.json())["code"] == "271828"


async def test_a_flood_for_one_number_is_rate_limited(api: Client, gw: Gateway) -> None:
    """Texts beyond OTPGATE_SMS_RATE_LIMIT a minute for one number get 429, stored nowhere."""
    headers = await _tenant(api)
    await _credential(api, headers, "+14155550107")
    statuses = []
    for i in range(7):
        params = twilio_params("+14155550107", f"code {100000 + i}")
        statuses.append((await post_twilio(api, params)).status)
    assert statuses == [200] * 5 + [429] * 2
    assert await stored(gw) == 5


async def test_without_an_auth_token_the_webhook_answers_503(
    tmp_path: Path, database_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """With no OTPGATE_TWILIO_AUTH_TOKEN nothing can be verified, so the webhook is unavailable."""
    async with opened(make_settings(tmp_path, database_url)) as gateway:
        api = await aiohttp_client(gateway.app)
        params = twilio_params("+14155550108", "code 123456")
        resp = await post_twilio(api, params, "anything")
        assert resp.status == 503
        assert await stored(gateway) == 0


# -- SMS Gateway for Android ---------------------------------------------------------


def android_event(device: str, text: str, *, sim: int | None = 1, event_id: str = "") -> bytes:
    body = {
        "deviceId": device,
        "event": "sms:received",
        "id": event_id or f"ev-{next(_sid_counter)}",
        "payload": {
            "messageId": "69bde8d0",
            "message": text,
            "phoneNumber": "6505551212",
            "simNumber": sim,
            "receivedAt": "2026-11-27T07:29:55.000+07:00",
        },
        "webhookId": "LreFUt-Z3sSq0JufY9uWB",
    }
    return json.dumps(body).encode()


def android_sign(key: str, raw: bytes, stamp: int | None = None) -> dict[str, str]:
    """The app's signature: hex HMAC-SHA256 of the raw body followed by the timestamp."""
    ts = str(int(time.time()) if stamp is None else stamp)
    sig = hmac.new(key.encode(), raw + ts.encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Signature": sig, "X-Timestamp": ts}


async def _device(
    api: Client, headers: dict[str, str], cred: str, device: str, sim: int | None = None
) -> str:
    body: dict[str, Any] = {"device_id": device}
    if sim is not None:
        body["sim_number"] = sim
    resp = await api.post(f"/v1/credentials/{cred}/sms-devices", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    out = await resp.json()
    assert out["webhook_url"] == PUBLIC + "/sms/android"
    key: str = out["signing_key"]
    return key


async def test_android_gateway_delivers_a_code(api: Client, gw: Gateway) -> None:
    """A signed sms:received event from a mapped device delivers its code to the waiting agent."""
    headers = await _tenant(api)
    cred = await _credential(api, headers, None)
    key = await _device(api, headers, cred, "ffffffffceb0b1db00000193991c27e5")
    waiting = asyncio.create_task(api.get(f"/v1/credentials/{cred}/code?wait=10", headers=headers))
    await parked(gw, cred)
    raw = android_event("ffffffffceb0b1db00000193991c27e5", "G-804511 is your Google code.")
    resp = await api.post("/sms/android", data=raw, headers=android_sign(key, raw))
    assert resp.status == 200, await resp.text()
    got = await waiting
    assert (await got.json())["code"] == "804511"


async def test_android_sim_slots_route_to_their_credentials(api: Client, gw: Gateway) -> None:
    """Two SIMs of one phone mapped to two credentials: each text reaches the right one."""
    headers = await _tenant(api)
    a = await _credential(api, headers, None)
    b = await _credential(api, headers, None)
    key = await _device(api, headers, a, "dual-sim-phone", sim=1)
    resp = await api.post(
        f"/v1/credentials/{b}/sms-devices",
        json={"device_id": "dual-sim-phone", "sim_number": 2, "signing_key": key},
        headers=headers,
    )
    assert resp.status == 201
    for sim, code in ((1, "111333"), (2, "222444")):
        raw = android_event("dual-sim-phone", f"Your code is {code}", sim=sim)
        assert (
            await api.post("/sms/android", data=raw, headers=android_sign(key, raw))
        ).status == 200
    got_a = await (await api.get(f"/v1/credentials/{a}/code", headers=headers)).json()
    got_b = await (await api.get(f"/v1/credentials/{b}/code", headers=headers)).json()
    assert (got_a["code"], got_b["code"]) == ("111333", "222444")


@pytest.mark.parametrize("how", ["bad-key", "unknown-device", "stale", "no-header", "tampered"])
async def test_android_bad_signatures_are_refused(api: Client, gw: Gateway, how: str) -> None:
    """A wrong key, unknown device, old timestamp or changed body gets 403; nothing is stored."""
    headers = await _tenant(api)
    cred = await _credential(api, headers, None)
    key = await _device(api, headers, cred, "phone-1")
    raw = android_event("unknown-phone" if how == "unknown-device" else "phone-1", "code 765432")
    signed = android_sign(
        "not-the-key-0123456789" if how == "bad-key" else key,
        raw,
        int(time.time()) - 3600 if how == "stale" else None,
    )
    if how == "no-header":
        del signed["X-Signature"]
    if how == "tampered":
        raw = raw.replace(b"765432", b"000000")
    resp = await api.post("/sms/android", data=raw, headers=signed)
    assert resp.status == 403
    assert await stored(gw) == 0


async def test_android_redelivery_is_stored_once(api: Client, gw: Gateway) -> None:
    """The app retries with the same event id: stored once; other events are acknowledged."""
    headers = await _tenant(api)
    cred = await _credential(api, headers, None)
    key = await _device(api, headers, cred, "phone-2")
    raw = android_event("phone-2", "code 246810", event_id="same-event")
    for _ in range(3):
        assert (
            await api.post("/sms/android", data=raw, headers=android_sign(key, raw))
        ).status == 200
    assert await stored(gw) == 1
    ping = json.dumps({"deviceId": "phone-2", "event": "system:ping", "id": "p1", "payload": {}})
    resp = await api.post("/sms/android", data=ping, headers=android_sign(key, ping.encode()))
    assert resp.status == 200
    assert await stored(gw) == 1


async def test_android_device_mappings_are_validated(api: Client, gw: Gateway) -> None:
    """A device (and SIM) maps to one credential; bad ids and short keys are refused."""
    headers = await _tenant(api)
    a = await _credential(api, headers, None)
    b = await _credential(api, headers, None)
    await _device(api, headers, a, "phone-3")
    url = f"/v1/credentials/{b}/sms-devices"
    assert (await api.post(url, json={"device_id": "phone-3"}, headers=headers)).status == 409
    assert (await api.post(url, json={"device_id": "bad id!"}, headers=headers)).status == 422
    resp = await api.post(url, json={"device_id": "p4", "signing_key": "short"}, headers=headers)
    assert resp.status == 422
    assert (await api.post(url, json={"device_id": "p4", "x": 1}, headers=headers)).status == 422
    listed = await (await api.get(f"/v1/credentials/{a}/sms-devices", headers=headers)).json()
    assert [d["device_id"] for d in listed["sms_devices"]] == ["phone-3"]
    assert "signing_key" not in listed["sms_devices"][0]
    other = await _tenant(api)
    assert (await api.get(f"/v1/credentials/{a}/sms-devices", headers=other)).status == 404
    dev = listed["sms_devices"][0]["id"]
    assert (await api.delete(f"/v1/credentials/{a}/sms-devices/{dev}", headers=other)).status == 404
    assert (
        await api.delete(f"/v1/credentials/{a}/sms-devices/{dev}", headers=headers)
    ).status == 204


async def test_a_device_signing_key_is_sealed_at_rest(
    tmp_path: Path, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """The Android signing key a tenant sets is not in the SQLite files in clear."""
    db_path = tmp_path / "data" / "otpgate.db"
    async with opened(make_settings(tmp_path, f"sqlite:///{db_path}")) as gateway:
        api = await aiohttp_client(gateway.app)
        headers = await _tenant(api)
        cred = await _credential(api, headers, None)
        key = "canary-signing-key-5f3a9c"
        resp = await api.post(
            f"/v1/credentials/{cred}/sms-devices",
            json={"device_id": "phone-9", "signing_key": key},
            headers=headers,
        )
        assert resp.status == 201
    raw = b"".join(p.read_bytes() for p in db_path.parent.glob("otpgate.db*"))
    assert b"phone-9" in raw  # the device id is there, so the scan reads the data
    assert key.encode() not in raw


async def test_android_over_long_text_is_refused(api: Client, gw: Gateway) -> None:
    """A signed sms:received whose message is over 1,600 characters gets 413; nothing is stored."""
    headers = await _tenant(api)
    cred = await _credential(api, headers, None)
    key = await _device(api, headers, cred, "phone-long")
    raw = android_event("phone-long", "code 123456 " + "x" * 1600)
    resp = await api.post("/sms/android", data=raw, headers=android_sign(key, raw))
    assert resp.status == 413
    assert await stored(gw) == 0


# -- texts stored by the ingest worker -------------------------------------------------


@pytest.fixture
def worker(gw: Gateway) -> IngestWorker:
    """The ingest worker storing texts for *gw*, wired as ``otpgate serve`` wires it."""
    assert gw.worker is not None
    return gw.worker


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every frame the gateway reads from its ingest worker (asked for before ``gw``)."""
    frames: list[Any] = []
    read = ingest_worker.read_frame

    async def recording(reader: asyncio.StreamReader) -> Any:
        frame = await read(reader)
        frames.append(frame)
        return frame

    monkeypatch.setattr(ingest_worker, "read_frame", recording)
    return frames


def _local_commits(gw: Gateway) -> int:
    """Group commits of messages made by the gateway's own process (not the worker's)."""
    return gw.services.inbound._commit.batches


async def test_worker_stores_a_text_for_a_waiting_agent(
    api: Client, gw: Gateway, worker: IngestWorker
) -> None:
    """With the worker running, a signed text is committed there and wakes the agent here, once."""
    headers = await _tenant(api)
    cred = await _credential(api, headers, "+14155550140")
    waiting = asyncio.create_task(api.get(f"/v1/credentials/{cred}/code?wait=10", headers=headers))
    await parked(gw, cred)
    resp = await post_twilio(api, twilio_params("+14155550140", "Your Bank code is 731905"))
    assert resp.status == 200
    got = await waiting
    assert (got.status, (await got.json())["code"]) == (200, "731905")
    assert _local_commits(gw) == 0  # stored by the worker
    metrics = await (await api.get("/metrics")).text()
    assert 'otpgate_messages_total{channel="sms",outcome="code"} 1' in metrics
    assert await stored(gw) == 0


async def test_worker_stores_a_redelivery_once(
    api: Client, gw: Gateway, worker: IngestWorker
) -> None:
    """Duplicates that reach the worker together are answered 200 and stored once."""
    headers = await _tenant(api)
    await _credential(api, headers, "+14155550141")
    params = twilio_params("+14155550141", "Your code is 640128")
    answers = await asyncio.gather(*(post_twilio(api, params) for _ in range(4)))
    assert [a.status for a in answers] == [200] * 4
    gw.services.sms._recent.clear()  # as after a restart: only the store remembers it
    assert (await post_twilio(api, params)).status == 200
    assert await stored(gw) == 1
    assert _local_commits(gw) == 0


async def test_a_dead_worker_leaves_texts_to_the_gateway(
    api: Client, gw: Gateway, worker: IngestWorker
) -> None:
    """Twilio does not retry: with the worker killed, texts are stored in the gateway's process."""
    headers = await _tenant(api)
    cred = await _credential(api, headers, "+14155550142")
    assert worker._proc is not None
    os.kill(worker._proc.pid, signal.SIGKILL)
    for n, code in enumerate(("118235", "118236")):
        resp = await post_twilio(api, twilio_params("+14155550142", f"Your code is {code}"))
        assert resp.status == 200
        got = await api.get(f"/v1/credentials/{cred}/code", headers=headers)
        assert (await got.json())["code"] == code, n
    assert _local_commits(gw) == 2


async def test_a_stalled_worker_times_out_and_the_text_is_stored_once(
    answers: list[Any],
    api: Client,
    gw: Gateway,
    worker: IngestWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker that stops answering: the gateway stores the text, and the late copy is refused."""
    monkeypatch.setattr(ingest_worker, "INGEST_TIMEOUT", 0.5)
    headers = await _tenant(api)
    cred = await _credential(api, headers, "+14155550143")
    assert worker._proc is not None
    os.kill(worker._proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        resp = await post_twilio(api, twilio_params("+14155550143", "Your code is 902211"))
        assert resp.status == 200
        assert time.monotonic() - started < 5
        assert _local_commits(gw) == 1
    finally:
        os.kill(worker._proc.pid, signal.SIGCONT)
    late = worker._next_id  # the worker wakes, tries its copy and meets the unique key

    async def answered() -> bool:
        return any(isinstance(frame, tuple) and frame[0] == late for frame in answers)

    await eventually(answered)
    assert worker._proc.returncode is None and worker.restarts == 0
    assert await stored(gw) == 1
    got = await api.get(f"/v1/credentials/{cred}/code", headers=headers)
    assert (await got.json())["code"] == "902211"


# -- SharedKey signatures (Twilio Webhook Rules) ------------------------------------------

OLD_KEY = ("webhooks_sharedkey_old", "shared-secret-old-0123456789abcdef")
NEW_KEY = ("webhooks_sharedkey_new", "shared-secret-new-0123456789abcdef")


@contextlib.asynccontextmanager
async def _shared_key_api(
    tmp_path: Path,
    database_url: str,
    aiohttp_client: Callable[..., Awaitable[Client]],
    **env: str,
) -> AsyncIterator[tuple[Client, Gateway]]:
    settings = make_settings(
        tmp_path,
        database_url,
        OTPGATE_TWILIO_SHARED_KEYS=",".join(f"{k}={v}" for k, v in (OLD_KEY, NEW_KEY)),
        OTPGATE_PUBLIC_URL=PUBLIC,
        **env,
    )
    async with opened(settings) as gateway:
        yield await aiohttp_client(gateway.app), gateway


def _shared_headers(
    params: dict[str, str], key: tuple[str, str], algorithm: str = "HMAC_SHA256"
) -> dict[str, str]:
    signature = RequestValidator(key[1]).compute_signature(
        PUBLIC + "/sms/twilio", params, algorithm
    )
    return {
        **FORM,
        "X-Twilio-Signature": signature,
        "X-Twilio-Webhooks-Signature-Settings": f"key={key[0]},algorithm={algorithm}",
    }


async def test_shared_key_signatures_are_checked_with_the_key_named(
    tmp_path: Path, database_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """A Webhook Rule's SharedKey (either while rotating, SHA-256 or SHA-1) is accepted;
    the auth token, another key, an unknown key or algorithm under that header is not."""
    async with _shared_key_api(
        tmp_path, database_url, aiohttp_client, OTPGATE_TWILIO_AUTH_TOKEN=TOKEN
    ) as (api, gw):
        headers = await _tenant(api)
        cred = await _credential(api, headers, "+14155550150")
        accepted = [
            (twilio_params("+14155550150", "Your code is 310001"), NEW_KEY, "HMAC_SHA256"),
            (twilio_params("+14155550150", "Your code is 310002"), OLD_KEY, "HMAC_SHA256"),
            (twilio_params("+14155550150", "Your code is 310003"), NEW_KEY, "HMAC_SHA1"),
        ]
        for params, key, algorithm in accepted:
            resp = await api.post(
                "/sms/twilio",
                data=urlencode(params),
                headers=_shared_headers(params, key, algorithm),
            )
            assert resp.status == 200, (key[0], algorithm, await resp.text())
            got = await api.get(f"/v1/credentials/{cred}/code", headers=headers)
            assert (await got.json())["code"] == params["Body"][-6:]
        params = twilio_params("+14155550150", "Your code is 310004")
        by_token = {**_shared_headers(params, NEW_KEY), "X-Twilio-Signature": sign(params)}
        other_key = {
            **_shared_headers(params, OLD_KEY),
            "X-Twilio-Webhooks-Signature-Settings": f"key={NEW_KEY[0]},algorithm=HMAC_SHA256",
        }
        unknown = _shared_headers(params, ("webhooks_sharedkey_gone", "x" * 32))
        bad_algorithm = {
            **_shared_headers(params, NEW_KEY),
            "X-Twilio-Webhooks-Signature-Settings": f"key={NEW_KEY[0]},algorithm=HMAC_MD5",
        }
        for refused in (by_token, other_key, unknown, bad_algorithm):
            resp = await api.post("/sms/twilio", data=urlencode(params), headers=refused)
            assert resp.status == 403
            assert (await resp.json())["error"]["code"] == "bad_signature"
        assert await stored(gw) == 0


async def test_shared_keys_alone_are_enough(
    tmp_path: Path, database_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """With shared keys and no auth token, a text with no shared-key header is refused (403)."""
    async with _shared_key_api(tmp_path, database_url, aiohttp_client) as (api, gw):
        headers = await _tenant(api)
        await _credential(api, headers, "+14155550151")
        params = twilio_params("+14155550151", "Your code is 420001")
        resp = await api.post(
            "/sms/twilio", data=urlencode(params), headers=_shared_headers(params, NEW_KEY)
        )
        assert resp.status == 200
        params = twilio_params("+14155550151", "Your code is 420002")
        resp = await post_twilio(api, params)
        assert resp.status == 403
        assert await stored(gw) == 1


def test_shared_key_secrets_stay_out_of_errors_and_reprs(tmp_path: Path) -> None:
    """A bad entry is named by its id or position; secrets appear in no message or repr."""
    secret = "canary-shared-secret-9f2e"
    good = make_settings(tmp_path, None, OTPGATE_TWILIO_SHARED_KEYS=f"wk_a={secret}")
    assert good.twilio_shared_keys == (("wk_a", secret),)
    assert secret not in repr(good)
    for value, fragment in (
        (f"wk_a={secret},wk_a={secret}", "listed twice"),
        (f"{secret}", "entry 1"),
        (f"wk_a={secret},bad id={secret}", "entry 2"),
        ("wk_a=short", "wk_a must be"),
    ):
        with pytest.raises(ConfigError) as info:
            make_settings(tmp_path, None, OTPGATE_TWILIO_SHARED_KEYS=value)
        assert fragment in str(info.value) and secret not in str(info.value)


async def test_forwarding_rules_apply_from_the_next_text(
    tmp_path: Path, database_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """A rule added or deleted applies to the very next text, though its route was cached."""
    settings = make_settings(
        tmp_path,
        database_url,
        OTPGATE_TWILIO_AUTH_TOKEN=TOKEN,
        OTPGATE_PUBLIC_URL=PUBLIC,
        OTPGATE_SMTP_RELAY="smtp://127.0.0.1:9",  # never reached: no sender runs here
    )
    async with opened(settings) as gw:
        api = await aiohttp_client(gw.app)
        headers = await _tenant(api)
        cred = await _credential(api, headers, "+14155550160")

        async def text(code: str) -> int:
            resp = await post_twilio(api, twilio_params("+14155550160", f"Your code is {code}"))
            assert resp.status == 200, await resp.text()
            async with gw.db.read() as conn:
                stmt = select(func.count()).select_from(ForwardOutbox)
                return int((await conn.execute(stmt)).scalar_one())

        assert await text("500001") == 0  # the credential's route is cached now
        resp = await api.post(
            f"/v1/credentials/{cred}/forwards",
            json={"channel": "email", "to": "ops@example.com"},
            headers=headers,
        )
        assert resp.status == 201, await resp.text()
        rule = (await resp.json())["id"]
        assert await text("500002") == 1
        resp = await api.delete(f"/v1/credentials/{cred}/forwards/{rule}", headers=headers)
        assert resp.status == 204
        queued = await text("500003")
        assert queued == 0  # the deleted rule's copy went with it, and none was made
        assert await stored(gw) == 3
