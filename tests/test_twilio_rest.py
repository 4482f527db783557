"""Buying, releasing and texting through Twilio's REST API, against a loopback stand-in.

The gateway drives the official ``twilio`` client; ``tests/twilio_fake.py``
plays Twilio at its HTTP boundary and records what reached it, so these tests
pin the exact requests Twilio documents.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import Gateway
from gateway.errors import Invalid
from gateway.services.numbers import ProviderError
from sms.twilio_rest import MAX_BODY, SEARCH_LIMIT, TwilioRest

from .helpers import ADMIN, bearer, make_settings, opened, port_of, reserved
from .twilio_fake import ACCOUNT_SID, AUTH_TOKEN, Offer, Recorded, TwilioFake

Client = TestClient[Any, Any]
PUBLIC_URL = "https://otpgate.example.com"
SMS_URL = PUBLIC_URL + "/sms/twilio"
API = f"/2010-04-01/Accounts/{ACCOUNT_SID}"


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioFake]:
    async with TwilioFake() as fake:
        yield fake


@pytest.fixture
async def gw(tmp_path: Path, database_url: str, twilio: TwilioFake) -> AsyncIterator[Gateway]:
    settings = make_settings(tmp_path, database_url, OTPGATE_PUBLIC_URL=PUBLIC_URL, **twilio.env())
    async with opened(settings) as gateway:
        yield gateway


@pytest.fixture
async def api(gw: Gateway, aiohttp_client: Callable[..., Awaitable[Client]]) -> Client:
    return await aiohttp_client(gw.app, server_kwargs={"handler_cancellation": True})


@pytest.fixture
async def rest(twilio: TwilioFake) -> AsyncIterator[TwilioRest]:
    client = TwilioRest(ACCOUNT_SID, AUTH_TOKEN, api_url=twilio.url)
    yield client
    await client.close()


async def _tenant(api: Client) -> dict[str, str]:
    resp = await api.post("/v1/tenants", json={"name": "acme"}, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    return bearer((await resp.json())["api_key"])


async def _credential(api: Client, h: dict[str, str], name: str = "GitHub") -> str:
    resp = await api.post("/v1/credentials", json={"name": name}, headers=h)
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def _provision(
    api: Client, h: dict[str, str], cred: str, body: dict[str, Any] | None = None
) -> Any:
    return await api.post(
        f"/v1/credentials/{cred}/phone/provision",
        json={"country": "US", "area_code": "415"} if body is None else body,
        headers=h,
    )


def _lines(requests: list[Recorded]) -> list[str]:
    return [r.line for r in requests]


# -- provisioning through the API ----------------------------------------------------


async def test_provision_sends_the_documented_requests(api: Client, twilio: TwilioFake) -> None:
    """Provisioning searches Local SMS numbers in the area code, then buys one with SmsUrl."""
    h = await _tenant(api)
    cred = await _credential(api, h)
    resp = await _provision(api, h, cred)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["id"] == cred and body["phone_number"] == "+14155550123"

    search, buy = twilio.requests
    assert search.line == f"GET {API}/AvailablePhoneNumbers/US/Local.json"
    assert search.query == {"SmsEnabled": "true", "AreaCode": "415", "PageSize": str(SEARCH_LIMIT)}
    assert buy.line == f"POST {API}/IncomingPhoneNumbers.json"
    assert buy.form == {"PhoneNumber": "+14155550123", "SmsUrl": SMS_URL, "SmsMethod": "POST"}
    assert all(r.auth == (ACCOUNT_SID, AUTH_TOKEN) for r in twilio.requests)
    [owned] = twilio.owned.values()
    assert owned["phone_number"] == "+14155550123" and owned["sms_url"] == SMS_URL

    got = await (await api.get(f"/v1/credentials/{cred}", headers=h)).json()
    assert got["phone_number"] == "+14155550123"


async def test_lowercase_country_and_no_area_code(api: Client, twilio: TwilioFake) -> None:
    """The country is upper-cased for Twilio's URL, and no AreaCode is sent without one."""
    h = await _tenant(api)
    cred = await _credential(api, h)
    resp = await _provision(api, h, cred, {"country": "us"})
    assert resp.status == 201, await resp.text()
    assert twilio.requests[0].line == f"GET {API}/AvailablePhoneNumbers/US/Local.json"
    assert "AreaCode" not in twilio.requests[0].query


async def test_delete_with_release_number_releases_it(api: Client, twilio: TwilioFake) -> None:
    """DELETE ?release_number=true sends DELETE IncomingPhoneNumbers/{PN sid}.json, then deletes."""
    h = await _tenant(api)
    cred = await _credential(api, h)
    assert (await _provision(api, h, cred)).status == 201
    [sid] = twilio.owned
    resp = await api.delete(f"/v1/credentials/{cred}?release_number=true", headers=h)
    assert resp.status == 204
    assert twilio.requests[-1].line == f"DELETE {API}/IncomingPhoneNumbers/{sid}.json"
    assert twilio.requests[-1].auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert twilio.owned == {}
    assert (await api.get(f"/v1/credentials/{cred}", headers=h)).status == 404


async def test_delete_without_the_flag_keeps_the_number(api: Client, twilio: TwilioFake) -> None:
    """A plain DELETE deletes the credential and tells Twilio nothing: the number stays bought."""
    h = await _tenant(api)
    cred = await _credential(api, h)
    assert (await _provision(api, h, cred)).status == 201
    before = len(twilio.requests)
    resp = await api.delete(f"/v1/credentials/{cred}?release_number=false", headers=h)
    assert resp.status == 204
    assert len(twilio.requests) == before
    assert len(twilio.owned) == 1
    assert (await api.get(f"/v1/credentials/{cred}", headers=h)).status == 404


async def test_failed_release_keeps_the_credential(api: Client, twilio: TwilioFake) -> None:
    """When Twilio fails the release, the answer is 502 and the credential is still there."""
    h = await _tenant(api)
    cred = await _credential(api, h)
    assert (await _provision(api, h, cred)).status == 201
    twilio.fail(500, match="DELETE")
    resp = await api.delete(f"/v1/credentials/{cred}?release_number=true", headers=h)
    assert resp.status == 502
    error = (await resp.json())["error"]
    assert error["code"] == "provider_error"
    assert "not released" in error["message"] and "HTTP 500" in error["message"]
    got = await api.get(f"/v1/credentials/{cred}", headers=h)
    assert got.status == 200 and (await got.json())["phone_number"] == "+14155550123"
    # The user can simply try again.
    resp = await api.delete(f"/v1/credentials/{cred}?release_number=true", headers=h)
    assert resp.status == 204 and twilio.owned == {}


async def test_unassigning_the_phone(api: Client, twilio: TwilioFake) -> None:
    """DELETE /phone releases the number only with release_number=true; both unassign it."""
    h = await _tenant(api)
    cred = await _credential(api, h)
    assert (await _provision(api, h, cred)).status == 201
    [first] = twilio.owned
    before = len(twilio.requests)
    assert (await api.delete(f"/v1/credentials/{cred}/phone", headers=h)).status == 204
    assert len(twilio.requests) == before and first in twilio.owned
    got = await (await api.get(f"/v1/credentials/{cred}", headers=h)).json()
    assert got["phone_number"] is None

    assert (await _provision(api, h, cred)).status == 201
    second = next(sid for sid in twilio.owned if sid != first)
    resp = await api.delete(f"/v1/credentials/{cred}/phone?release_number=true", headers=h)
    assert resp.status == 204
    assert twilio.requests[-1].line == f"DELETE {API}/IncomingPhoneNumbers/{second}.json"
    assert set(twilio.owned) == {first}
    got = await (await api.get(f"/v1/credentials/{cred}", headers=h)).json()
    assert got["phone_number"] is None


async def test_release_needs_a_number_the_gateway_bought(api: Client, twilio: TwilioFake) -> None:
    """release_number=true on a number set by hand (or replaced by hand) is 422; nothing changes."""
    h = await _tenant(api)
    cred = await _credential(api, h)
    assert (await api.delete(f"/v1/credentials/{cred}?release_number=1", headers=h)).status == 422
    await api.put(f"/v1/credentials/{cred}/phone", json={"phone_number": "+15005550006"}, headers=h)
    resp = await api.delete(f"/v1/credentials/{cred}?release_number=true", headers=h)
    assert resp.status == 422
    assert "not bought by the gateway" in (await resp.json())["error"]["message"]
    resp = await api.delete(f"/v1/credentials/{cred}/phone?release_number=true", headers=h)
    assert resp.status == 422
    assert (await api.get(f"/v1/credentials/{cred}", headers=h)).status == 200
    assert twilio.requests == []

    # Setting the bought number again keeps its sid; another number drops it.
    other = await _credential(api, h, "Other")
    assert (await _provision(api, h, other)).status == 201
    number = (await (await api.get(f"/v1/credentials/{other}", headers=h)).json())["phone_number"]
    await api.put(f"/v1/credentials/{other}/phone", json={"phone_number": number}, headers=h)
    await api.put(
        f"/v1/credentials/{other}/phone", json={"phone_number": "+15005550007"}, headers=h
    )
    resp = await api.delete(f"/v1/credentials/{other}/phone?release_number=true", headers=h)
    assert resp.status == 422


async def test_bad_release_flag_is_400(api: Client, twilio: TwilioFake) -> None:
    """release_number accepts true/false/1/0 only; an empty value is malformed too."""
    h = await _tenant(api)
    cred = await _credential(api, h)
    for value in ("maybe", ""):
        resp = await api.delete(f"/v1/credentials/{cred}?release_number={value}", headers=h)
        assert resp.status == 400
    assert (await api.get(f"/v1/credentials/{cred}", headers=h)).status == 200


async def test_provision_conflicts_when_a_number_exists(api: Client, twilio: TwilioFake) -> None:
    """A credential that already has a number gets 409, and nothing is bought."""
    h = await _tenant(api)
    cred = await _credential(api, h)
    await api.put(f"/v1/credentials/{cred}/phone", json={"phone_number": "+15005550006"}, headers=h)
    resp = await _provision(api, h, cred)
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "conflict"
    assert twilio.requests == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"country": "USA"},
        {"country": "1"},
        {"country": "U"},
        {"country": "ÜS"},
        {"country": 1},
        {"country": "US", "area_code": "4"},
        {"country": "US", "area_code": "123456"},
        {"country": "US", "area_code": "41a"},
        {"country": "US", "area_code": 415},
        {"country": "US", "extra": True},
    ],
)
async def test_provision_validates_its_input(
    api: Client, twilio: TwilioFake, body: dict[str, Any]
) -> None:
    """A bad country or area code is 422 before anything reaches Twilio."""
    h = await _tenant(api)
    cred = await _credential(api, h)
    resp = await _provision(api, h, cred, body)
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["error"]["code"] == "invalid"
    assert twilio.requests == []


async def test_unknown_credential_is_404(api: Client, twilio: TwilioFake) -> None:
    """Provisioning for an unknown (or another tenant's) credential is 404; nothing is bought."""
    h = await _tenant(api)
    cred = await _credential(api, h)
    other = bearer(
        (await (await api.post("/v1/tenants", json={"name": "b"}, headers=ADMIN)).json())["api_key"]
    )
    assert (await _provision(api, other, cred)).status == 404
    assert (
        await api.delete(f"/v1/credentials/{cred}?release_number=true", headers=other)
    ).status == 404
    assert twilio.requests == []


async def test_no_number_available_is_422(api: Client, twilio: TwilioFake) -> None:
    """When Twilio offers no SMS number (Local, then Mobile), the answer says so, with 422."""
    twilio.sell_out()
    h = await _tenant(api)
    cred = await _credential(api, h)
    resp = await _provision(api, h, cred)
    assert resp.status == 422
    assert (await resp.json())["error"]["message"] == (
        "no SMS-capable number available in US with area code 415"
    )
    assert _lines(twilio.requests) == [
        f"GET {API}/AvailablePhoneNumbers/US/Local.json",
        f"GET {API}/AvailablePhoneNumbers/US/Mobile.json",
    ]
    got = await (await api.get(f"/v1/credentials/{cred}", headers=h)).json()
    assert got["phone_number"] is None


async def test_provider_failure_is_502(api: Client, twilio: TwilioFake) -> None:
    """A failed purchase is 502 (code provider_error) and leaves the credential without a number."""
    h = await _tenant(api)
    cred = await _credential(api, h)
    twilio.fail(500, match="IncomingPhoneNumbers.json")
    resp = await _provision(api, h, cred)
    assert resp.status == 502
    error = (await resp.json())["error"]
    assert error["code"] == "provider_error" and "HTTP 500" in error["message"]
    assert twilio.owned == {}
    got = await (await api.get(f"/v1/credentials/{cred}", headers=h)).json()
    assert got["phone_number"] is None


async def test_a_number_taken_meanwhile_buys_the_next(api: Client, twilio: TwilioFake) -> None:
    """If the first number is gone by the purchase (21422), the next one offered is bought."""
    h = await _tenant(api)
    cred = await _credential(api, h)
    twilio.fail(400, code=21422, message="Phone Number is not available", match="Incoming")
    resp = await _provision(api, h, cred)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["phone_number"] == "+14155550124"
    assert [r.form.get("PhoneNumber") for r in twilio.requests[1:]] == [
        "+14155550123",
        "+14155550124",
    ]


async def test_a_number_that_cannot_be_stored_is_released(api: Client, twilio: TwilioFake) -> None:
    """When the bought number cannot be recorded (it is another credential's), it is released."""
    h = await _tenant(api)
    holder = await _credential(api, h, "Holder")
    cred = await _credential(api, h)
    put = await api.put(
        f"/v1/credentials/{holder}/phone", json={"phone_number": "+14155550123"}, headers=h
    )
    assert put.status == 200
    resp = await _provision(api, h, cred)
    assert resp.status == 409
    buy, release = twilio.requests[1:]
    assert buy.line == f"POST {API}/IncomingPhoneNumbers.json"
    assert release.method == "DELETE" and twilio.owned == {}
    got = await (await api.get(f"/v1/credentials/{cred}", headers=h)).json()
    assert got["phone_number"] is None


async def test_concurrent_provisioning_keeps_one_number(api: Client, twilio: TwilioFake) -> None:
    """Two provisions racing for one credential: one wins, the loser's number is released."""
    h = await _tenant(api)
    cred = await _credential(api, h)
    twilio.delay = 0.05
    first, second = await asyncio.gather(_provision(api, h, cred), _provision(api, h, cred))
    assert sorted([first.status, second.status]) == [201, 409]
    got = await (await api.get(f"/v1/credentials/{cred}", headers=h)).json()
    [owned] = twilio.owned.values()
    assert got["phone_number"] == owned["phone_number"]


async def test_not_configured_is_503(client: Client, new_tenant: Any) -> None:
    """Without Twilio settings, provisioning is 503 twilio_not_configured, naming the variables."""
    h = (await new_tenant())["headers"]
    cred = await _credential(client, h)
    resp = await _provision(client, h, cred)
    assert resp.status == 503
    error = (await resp.json())["error"]
    assert error["code"] == "twilio_not_configured"
    assert "OTPGATE_TWILIO_ACCOUNT_SID" in error["message"]
    assert "OTPGATE_TWILIO_AUTH_TOKEN" in error["message"]
    # Another tenant's credential is still simply not found.
    other = (await new_tenant("other"))["headers"]
    assert (await _provision(client, other, cred)).status == 404
    assert (await client.delete(f"/v1/credentials/{cred}", headers=h)).status == 204


async def test_no_auth_token_in_logs_or_errors(
    api: Client, twilio: TwilioFake, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither the auth token nor the Basic credentials appear in a log line or an error body."""
    caplog.set_level(logging.DEBUG)
    basic = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    h = await _tenant(api)
    cred = await _credential(api, h)
    bodies = []
    twilio.fail(400, code=21211, message=f"echoing {AUTH_TOKEN}", match="Local")
    twilio.fail(500, match="Incoming")
    for _ in range(2):
        bodies.append(await (await _provision(api, h, cred)).text())
    assert (await _provision(api, h, cred)).status == 201
    twilio.fail(401, match="DELETE")
    bodies.append(
        await (await api.delete(f"/v1/credentials/{cred}?release_number=true", headers=h)).text()
    )
    assert all('"provider_error"' in b for b in bodies), bodies
    logged = [str(vars(r)) for r in caplog.records] + [r.getMessage() for r in caplog.records]
    assert any(r.name == "otpgate.twilio" for r in caplog.records)
    for text in logged + bodies:
        assert AUTH_TOKEN not in text
        assert basic not in text


# -- the client on its own -------------------------------------------------------------


async def test_send_sms_posts_a_message(rest: TwilioRest, twilio: TwilioFake) -> None:
    """send_sms POSTs To, From and Body to Messages.json with Basic auth, cut to 1,600 chars."""
    await rest.send_sms(to="+15558675310", from_="+14155550123", body="Your code is 123456")
    await rest.send_sms(to="+15558675310", from_="+14155550123", body="x" * 2000)
    first, second = await twilio.wait_for_messages(2)
    assert first.line == f"POST {API}/Messages.json"
    assert first.form == {
        "To": "+15558675310",
        "From": "+14155550123",
        "Body": "Your code is 123456",
    }
    assert first.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert second.form["Body"] == "x" * MAX_BODY


@pytest.mark.parametrize(
    ("status", "code", "retry"),
    [
        (500, 20500, True),
        (503, 20503, True),
        (429, 20429, True),
        (400, 21211, False),
        (401, 20003, False),
    ],
)
async def test_refusals_map_to_provider_errors(
    rest: TwilioRest, twilio: TwilioFake, status: int, code: int, retry: bool
) -> None:
    """5xx and 429 may be retried; other 4xx may not, and carry Twilio's code and message."""
    twilio.fail(status, code=code, message="The 'To' number +1555 is not a valid phone number.")
    with pytest.raises(ProviderError) as caught:
        await rest.send_sms(to="+15558675310", from_="+14155550123", body="hi")
    assert caught.value.retry is retry
    assert f"HTTP {status}" in str(caught.value) and str(code) in str(caught.value)
    assert "is not a valid phone number" in str(caught.value)


async def test_search_refusals_map_too(rest: TwilioRest, twilio: TwilioFake) -> None:
    """A failed number search (the client's page error) maps like any other call."""
    twilio.fail(500, match="Local")
    with pytest.raises(ProviderError) as caught:
        await rest.buy(country="US", area_code="415", sms_url=SMS_URL)
    assert caught.value.retry is True and "HTTP 500" in str(caught.value)
    twilio.fail(400, code=21452, message="No area code", match="Local")
    with pytest.raises(ProviderError) as caught:
        await rest.buy(country="US", area_code="415", sms_url=SMS_URL)
    assert caught.value.retry is False and "21452" in str(caught.value)


async def test_unreachable_twilio_may_be_retried() -> None:
    """Connection refused and a timeout are ProviderError(retry=True)."""
    refusing = reserved()
    closed = TwilioRest(ACCOUNT_SID, AUTH_TOKEN, api_url=f"http://127.0.0.1:{port_of(refusing)}")
    try:
        with pytest.raises(ProviderError) as caught:
            await closed.send_sms(to="+15558675310", from_="+14155550123", body="hi")
        assert caught.value.retry is True and "could not be reached" in str(caught.value)
    finally:
        await closed.close()
        refusing.close()

    async with TwilioFake() as slow:
        slow.delay = 1.0
        hasty = TwilioRest(ACCOUNT_SID, AUTH_TOKEN, api_url=slow.url, timeout=0.1)
        try:
            with pytest.raises(ProviderError) as caught:
                await hasty.release("PN" + "0" * 32)
            assert caught.value.retry is True
        finally:
            await hasty.close()


async def test_release_of_a_number_already_gone_succeeds(
    rest: TwilioRest, twilio: TwilioFake
) -> None:
    """Releasing a number Twilio no longer has (404) counts as released, so a retry can finish."""
    sid = twilio.own("+14155550199")
    await rest.release(sid)
    await rest.release(sid)
    assert _lines(twilio.requests) == [f"DELETE {API}/IncomingPhoneNumbers/{sid}.json"] * 2
    with pytest.raises(ProviderError):
        await rest.release("../Messages")
    assert len(twilio.requests) == 2


async def test_mobile_numbers_when_no_local_ones(rest: TwilioRest, twilio: TwilioFake) -> None:
    """Where only mobile numbers can text (as in GB), the Mobile listing is searched and bought."""
    twilio.offers.append(Offer("+447700900123", country="GB", kind="Mobile"))
    bought = await rest.buy(country="gb", area_code=None, sms_url=SMS_URL)
    assert bought.phone_number == "+447700900123" and bought.sid.startswith("PN")
    assert _lines(twilio.requests) == [
        f"GET {API}/AvailablePhoneNumbers/GB/Local.json",
        f"GET {API}/AvailablePhoneNumbers/GB/Mobile.json",
        f"POST {API}/IncomingPhoneNumbers.json",
    ]


async def test_numbers_without_sms_are_skipped(rest: TwilioRest, twilio: TwilioFake) -> None:
    """A listed number whose capabilities say no SMS is never bought."""
    twilio.offers[:] = [Offer("+14155550125", sms=False)]
    with pytest.raises(Invalid, match="no SMS-capable number available in US"):
        await rest.buy(country="US", area_code=None, sms_url=SMS_URL)
    assert twilio.owned == {}


async def test_twilio_environment_cannot_redirect_it(
    twilio: TwilioFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TWILIO_REGION/TWILIO_EDGE in the environment do not move requests off api_url."""
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    client = TwilioRest(ACCOUNT_SID, AUTH_TOKEN, api_url=twilio.url)
    try:
        await client.send_sms(to="+15558675310", from_="+14155550123", body="hi")
    finally:
        await client.close()
    assert len(twilio.messages) == 1
