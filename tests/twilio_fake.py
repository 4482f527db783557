"""A stand-in for Twilio's REST API on loopback, for tests.

Twilio's REST API cannot be reached from the tests, so this plays it at its
HTTP boundary, answering the way Twilio documents: it checks HTTP Basic auth
(account SID and auth token), records every request, and serves

* ``GET  /2010-04-01/Accounts/{Sid}/AvailablePhoneNumbers/{Country}/{Local|Mobile|TollFree}.json``
  (filters ``SmsEnabled``, ``AreaCode``, ``PageSize``),
* ``POST /2010-04-01/Accounts/{Sid}/IncomingPhoneNumbers.json`` (buy: 201),
* ``DELETE /2010-04-01/Accounts/{Sid}/IncomingPhoneNumbers/{PN sid}.json`` (release: 204),
* ``POST /2010-04-01/Accounts/{Sid}/Messages.json`` (send: 201, ``status`` "queued").

It can be told to fail (:meth:`TwilioFake.fail`), to have no numbers
(:meth:`TwilioFake.sell_out`) or to answer slowly (``delay``).  Use it as::

    async with TwilioFake() as twilio:
        settings = make_settings(tmp_path, database_url, **twilio.env())
        ...
        [message] = await twilio.wait_for_messages(1)
        assert message.form["Body"] == "..."
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import re
import secrets
from dataclasses import dataclass
from email.utils import formatdate
from types import TracebackType
from typing import Any

from aiohttp import web

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f4ke-twilio-auth-token-5ecret-0123"
API = "/2010-04-01/Accounts/{account}"

#: Twilio's error code for each status a test may ask for, with its message.
_DEFAULT_ERRORS = {
    400: (21211, "The 'To' number is not a valid phone number."),
    401: (20003, "Authenticate"),
    403: (20403, "Forbidden"),
    404: (20404, "The requested resource was not found"),
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service Unavailable"),
}


@dataclass(frozen=True)
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    #: The Basic-auth user and password sent, or None without (valid) Basic auth.
    auth: tuple[str, str] | None
    headers: dict[str, str]

    @property
    def line(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Offer:
    """A number for sale in the AvailablePhoneNumbers listing."""

    phone_number: str
    country: str = "US"
    kind: str = "Local"  # Local, Mobile or TollFree, as in the URL
    sms: bool = True
    region: str = "CA"


@dataclass
class _Failure:
    status: int
    code: int | None
    message: str
    match: str | None
    times: int | None  # None: until heal()


class TwilioFake:
    """Twilio's REST API on ``http://127.0.0.1:<port>``; see the module docstring."""

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        #: Numbers for sale; buying one takes it off the list.
        self.offers: list[Offer] = [
            Offer("+14155550123"),
            Offer("+14155550124"),
            Offer("+14155550125", sms=False),
            Offer("+12125550100", region="NY"),
        ]
        #: Numbers on the account: sid -> the IncomingPhoneNumber resource.
        self.owned: dict[str, dict[str, Any]] = {}
        #: Every request, in order (failed and unauthenticated ones too).
        self.requests: list[Recorded] = []
        #: Seconds to wait before answering each request.
        self.delay = 0.0
        #: Refuse a message whose From is not one of ``owned`` (21606), as Twilio does.
        self.check_from = False
        #: ``http://127.0.0.1:<port>``, once started.
        self.url = ""
        self._accepted: list[Recorded] = []
        self._failures: list[_Failure] = []
        self._runner: web.AppRunner | None = None
        self._arrived: asyncio.Condition | None = None

    # -- life cycle ---------------------------------------------------------------

    async def start(self) -> TwilioFake:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self._arrived = asyncio.Condition()
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> TwilioFake:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def env(self) -> dict[str, str]:
        """The ``OTPGATE_TWILIO_*`` settings that aim a gateway at this fake."""
        return {
            "OTPGATE_TWILIO_ACCOUNT_SID": self.account_sid,
            "OTPGATE_TWILIO_AUTH_TOKEN": self.auth_token,
            "OTPGATE_TWILIO_API_URL": self.url,
        }

    # -- steering -----------------------------------------------------------------

    def fail(
        self,
        status: int = 500,
        *,
        code: int | None = None,
        message: str | None = None,
        match: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Answer the next *times* requests (None: all until :meth:`heal`) with an error.

        *match* limits it to requests whose ``"METHOD /path"`` contains it, such
        as ``"Messages.json"``.  The body is Twilio's error JSON: ``code``,
        ``message``, ``more_info``, ``status``.
        """
        default_code, default_message = _DEFAULT_ERRORS.get(status, (None, "Error"))
        self._failures.append(
            _Failure(status, code or default_code, message or default_message, match, times)
        )

    def heal(self) -> None:
        """Forget every failure asked for."""
        self._failures.clear()

    def sell_out(self) -> None:
        """No number is for sale any more."""
        self.offers.clear()

    def own(self, phone_number: str, *, sms_url: str = "") -> str:
        """Put a number on the account as if it had been bought; returns its sid."""
        return str(self._buy(phone_number, {"SmsUrl": sms_url, "SmsMethod": "POST"})["sid"])

    # -- what happened --------------------------------------------------------------

    @property
    def messages(self) -> list[Recorded]:
        """The Messages create requests that were accepted (201), in order."""
        return [
            r for r in self._accepted if r.method == "POST" and r.path.endswith("/Messages.json")
        ]

    async def wait_for_messages(self, count: int, within: float = 5.0) -> list[Recorded]:
        """Wait up to *within* seconds until *count* messages were accepted; return them all."""
        assert self._arrived is not None, "start() the fake first"
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.messages) >= count), within
            )
        return self.messages

    def of(self, method: str, suffix: str) -> list[Recorded]:
        """Recorded requests with this method whose path ends with *suffix*."""
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    # -- the API --------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        form: dict[str, str] = {}
        if request.method in ("POST", "PUT"):
            form = {k: str(v) for k, v in (await request.post()).items()}
        record = Recorded(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            form=form,
            auth=_basic_auth(request.headers.get("Authorization", "")),
            headers=dict(request.headers),
        )
        self.requests.append(record)
        if self.delay:
            await asyncio.sleep(self.delay)
        response = self._answer(record)
        if response.status < 300:
            self._accepted.append(record)
            assert self._arrived is not None
            async with self._arrived:
                self._arrived.notify_all()
        return response

    def _answer(self, r: Recorded) -> web.Response:
        if r.auth is None or not (
            hmac.compare_digest(r.auth[0], self.account_sid)
            and hmac.compare_digest(r.auth[1], self.auth_token)
        ):
            response = _error(
                401, 20003, "Authenticate", detail="Your AccountSid or AuthToken was incorrect."
            )
            response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return response
        for failure in self._failures:
            if failure.match is None or failure.match in r.line:
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                return _error(failure.status, failure.code, failure.message)
        base = API.format(account=self.account_sid)
        if not r.path.startswith(base + "/"):
            return _error(404, 20404, f"The requested resource {r.path} was not found")
        rest = r.path[len(base) :]
        if r.method == "GET" and (m := _AVAILABLE.match(rest)):
            return self._available(r, m["country"], m["kind"])
        if r.method == "POST" and rest == "/IncomingPhoneNumbers.json":
            return self._buy_request(r)
        if r.method == "DELETE" and (m := _INCOMING.match(rest)):
            return self._release(m["sid"])
        if r.method == "POST" and rest == "/Messages.json":
            return self._message(r)
        return _error(404, 20404, f"The requested resource {r.path} was not found")

    def _available(self, r: Recorded, country: str, kind: str) -> web.Response:
        found = [o for o in self.offers if o.country == country and o.kind == kind]
        if r.query.get("SmsEnabled") == "true":
            found = [o for o in found if o.sms]
        if r.query.get("SmsEnabled") == "false":
            found = [o for o in found if not o.sms]
        if area := r.query.get("AreaCode"):
            found = [o for o in found if o.phone_number[2:].startswith(area)]
        size = int(r.query.get("PageSize", "50"))
        uri = f"{r.path}?PageSize={size}&Page=0"
        return web.json_response(
            {
                "available_phone_numbers": [_offer_json(o) for o in found[:size]],
                "end": max(0, min(size, len(found)) - 1),
                "first_page_uri": uri,
                "next_page_uri": None,
                "page": 0,
                "page_size": size,
                "previous_page_uri": None,
                "start": 0,
                "uri": uri,
            }
        )

    def _buy_request(self, r: Recorded) -> web.Response:
        phone = r.form.get("PhoneNumber")
        if not phone:
            return _error(400, 21421, "PhoneNumber or AreaCode is required")
        if not any(o.phone_number == phone for o in self.offers):
            return _error(400, 21422, f"Phone Number {phone} is not available")
        return web.json_response(self._buy(phone, r.form), status=201)

    def _buy(self, phone: str, form: dict[str, str]) -> dict[str, Any]:
        offer = next((o for o in self.offers if o.phone_number == phone), Offer(phone))
        if offer in self.offers:
            self.offers.remove(offer)
        sid = "PN" + secrets.token_hex(16)
        now = formatdate(usegmt=True).replace("GMT", "+0000")
        resource = {
            "account_sid": self.account_sid,
            "address_requirements": "none",
            "address_sid": None,
            "api_version": "2010-04-01",
            "beta": False,
            "capabilities": {"fax": False, "mms": True, "sms": offer.sms, "voice": True},
            "date_created": now,
            "date_updated": now,
            "emergency_status": "Inactive",
            "friendly_name": _friendly(phone),
            "identity_sid": None,
            "origin": "twilio",
            "phone_number": phone,
            "sid": sid,
            "sms_application_sid": "",
            "sms_fallback_method": form.get("SmsFallbackMethod", "POST"),
            "sms_fallback_url": form.get("SmsFallbackUrl", ""),
            "sms_method": form.get("SmsMethod", "POST"),
            "sms_url": form.get("SmsUrl", ""),
            "status": "in-use",
            "status_callback": "",
            "status_callback_method": "POST",
            "trunk_sid": None,
            "uri": f"{API.format(account=self.account_sid)}/IncomingPhoneNumbers/{sid}.json",
            "voice_method": "POST",
            "voice_url": "",
        }
        self.owned[sid] = resource
        return resource

    def _release(self, sid: str) -> web.Response:
        if self.owned.pop(sid, None) is None:
            return _error(
                404, 20404, f"The requested resource /IncomingPhoneNumbers/{sid}.json was not found"
            )
        return web.Response(status=204)

    def _message(self, r: Recorded) -> web.Response:
        to, from_, body = r.form.get("To", ""), r.form.get("From", ""), r.form.get("Body")
        if not _E164.match(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not from_:
            return _error(400, 21603, "A 'From' phone number is required.")
        if self.check_from and from_ not in {n["phone_number"] for n in self.owned.values()}:
            return _error(
                400,
                21606,
                f"The From phone number {from_} is not a valid, SMS-capable inbound phone "
                "number or short code for your account.",
            )
        if not body:
            return _error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return _error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        sid = "SM" + secrets.token_hex(16)
        now = formatdate(usegmt=True).replace("GMT", "+0000")
        base = API.format(account=self.account_sid)
        return web.json_response(
            {
                "account_sid": self.account_sid,
                "api_version": "2010-04-01",
                "body": body,
                "date_created": now,
                "date_sent": None,
                "date_updated": now,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": from_,
                "messaging_service_sid": None,
                "num_media": "0",
                "num_segments": str(max(1, -(-len(body) // 153))),
                "price": None,
                "price_unit": "USD",
                "sid": sid,
                "status": "queued",
                "subresource_uris": {"media": f"{base}/Messages/{sid}/Media.json"},
                "to": to,
                "uri": f"{base}/Messages/{sid}.json",
            },
            status=201,
        )


_AVAILABLE = re.compile(
    r"^/AvailablePhoneNumbers/(?P<country>[A-Z]{2})/(?P<kind>Local|Mobile|TollFree)\.json$"
)
_INCOMING = re.compile(r"^/IncomingPhoneNumbers/(?P<sid>PN[0-9a-f]{32})\.json$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def _basic_auth(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _error(
    status: int, code: int | None, message: str, *, detail: str | None = None
) -> web.Response:
    """Twilio's error body, as its REST API sends it."""
    body: dict[str, Any] = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    return web.json_response(body, status=status)


def _offer_json(offer: Offer) -> dict[str, Any]:
    return {
        "address_requirements": "none",
        "beta": False,
        "capabilities": {"mms": True, "sms": offer.sms, "voice": True},
        "friendly_name": _friendly(offer.phone_number),
        "iso_country": offer.country,
        "lata": "722",
        "latitude": "37.780000",
        "locality": "San Francisco",
        "longitude": "-122.420000",
        "phone_number": offer.phone_number,
        "postal_code": "94103",
        "rate_center": "SNFC CA",
        "region": offer.region,
    }


def _friendly(phone: str) -> str:
    digits = phone[2:] if phone.startswith("+1") else phone
    if len(digits) == 10:
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return phone
