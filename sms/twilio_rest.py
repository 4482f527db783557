"""Twilio's REST API through the official ``twilio`` client: buy numbers, send texts.

:class:`TwilioRest` implements the core's ``NumberProvider`` and ``SmsSender``
protocols with ``twilio.rest.Client`` and its ``*_async`` methods.  The client
talks through :class:`_HttpClient`, a small ``twilio.http.AsyncHttpClient`` on
aiohttp that

* sends every request to ``api_url`` (``OTPGATE_TWILIO_API_URL``) instead of
  the host the client library chose, so tests aim it at a loopback stand-in
  and the ``TWILIO_EDGE``/``TWILIO_REGION`` variables the library reads from
  the environment cannot send it elsewhere;
* gives each request a timeout and never retries (the callers do: the
  forwarding outbox with back-off, a person at the API);
* logs nothing: the library's own client logs request parameters.

Failures become :class:`~gateway.services.numbers.ProviderError`: network
errors, 5xx and 429 with ``retry=True``, other 4xx with ``retry=False`` and
Twilio's error code and message.  No message ever holds the auth token.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import (
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from gateway.errors import Invalid
from gateway.services.numbers import BoughtNumber, ProviderError

log = logging.getLogger("otpgate.twilio")

T = TypeVar("T")

#: Seconds one request to Twilio may take, connecting included.
TIMEOUT = 15.0
#: Twilio's limit on a message body (longer ones are refused with error 21617).
MAX_BODY = 1600
#: How many available numbers one search asks for; buying tries the first few.
SEARCH_LIMIT = 5
#: Candidates tried when a number is taken between the search and the purchase.
PURCHASE_ATTEMPTS = 3
#: Twilio's error for "this number is not available to buy (any more)".
NUMBER_NOT_AVAILABLE = 21422

_NUMBER_SID = re.compile(r"^PN[0-9a-fA-F]{32}$")


class _HttpClient(AsyncHttpClient):  # type: ignore[misc]  # twilio ships no type information
    """The async HTTP client the ``twilio`` library calls, on one aiohttp session.

    It rewrites the scheme, host and port of every URL to those of *api_url*
    (keeping the path and query), so the whole client can be pointed at a
    stand-in.  The session is opened on first use, inside the running loop.
    """

    def __init__(self, api_url: str, *, timeout: float) -> None:
        super().__init__(log, True, timeout)
        base = urlsplit(api_url)
        self._scheme = base.scheme
        self._netloc = base.netloc
        self._prefix = base.path.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    def rebase(self, url: str) -> str:
        """*url* with the scheme, host and port of ``api_url`` (and its path as a prefix)."""
        parts = urlsplit(url)
        return urlunsplit(
            (self._scheme, self._netloc, self._prefix + parts.path, parts.query, parts.fragment)
        )

    async def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, object] | None = None,
        data: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the twilio library's signature
        allow_redirects: bool = False,
    ) -> Response:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        seconds = timeout if timeout is not None else self.timeout
        sent = dict(headers or {})
        if auth is not None:
            basic = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            sent["Authorization"] = f"Basic {basic}"
        async with self._session.request(
            method.upper(),
            self.rebase(url),
            params=_pairs(params),
            data=_pairs(data),
            headers=sent,
            timeout=aiohttp.ClientTimeout(total=seconds),
            allow_redirects=allow_redirects,
        ) as resp:
            text = await resp.text()
            return Response(resp.status, text, resp.headers)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _pairs(values: Mapping[str, object] | None) -> list[tuple[str, str]] | None:
    """Form or query fields as pairs; a list value repeats its key, as Twilio expects."""
    if values is None:
        return None
    pairs: list[tuple[str, str]] = []
    for key, value in values.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is not None:
                pairs.append((key, str(item)))
    return pairs


class TwilioRest:
    """Buys and releases numbers and sends texts with one Twilio account."""

    def __init__(
        self, account_sid: str, auth_token: str, *, api_url: str, timeout: float = TIMEOUT
    ) -> None:
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._http = _HttpClient(api_url, timeout=timeout)
        self._client = Client(
            username=account_sid,
            password=auth_token,
            account_sid=account_sid,
            http_client=self._http,
        )

    def __repr__(self) -> str:
        return f"<TwilioRest {self._account_sid}>"

    async def close(self) -> None:
        """Close the HTTP session (a later call opens a new one)."""
        await self._http.close()

    async def buy(self, *, country: str, area_code: str | None, sms_url: str) -> BoughtNumber:
        """Buy the first available SMS-capable number and point its inbound texts at *sms_url*."""
        country = country.upper()
        candidates = await self._search(country, area_code)
        where = f"in {country}" + (f" with area code {area_code}" if area_code else "")
        if not candidates:
            raise Invalid(f"no SMS-capable number available {where}")
        for phone in candidates[:PURCHASE_ATTEMPTS]:
            try:
                bought = await self._call(
                    "buying a number",
                    self._client.incoming_phone_numbers.create_async(
                        phone_number=phone, sms_url=sms_url, sms_method="POST"
                    ),
                    passthrough=NUMBER_NOT_AVAILABLE,
                )
            except _PassedThrough:  # taken since the search: try the next one
                log.info("number taken since the search; trying the next", extra={"where": where})
                continue
            number = BoughtNumber(phone_number=str(bought.phone_number), sid=str(bought.sid))
            log.info("number bought", extra={"sid": number.sid, "country": country})
            return number
        raise ProviderError(
            f"the numbers Twilio offered {where} were taken before they could be bought; try again",
            retry=True,
        )

    async def release(self, sid: str) -> None:
        """Give the number back to Twilio; one that is already gone counts as released."""
        if not _NUMBER_SID.match(sid):
            raise ProviderError(f"{sid!r} is not a Twilio phone number SID", retry=False)
        try:
            await self._call(
                "releasing a number",
                self._client.incoming_phone_numbers(sid).delete_async(),
                passthrough=404,
            )
        except _PassedThrough:
            log.warning("number was already released at Twilio", extra={"sid": sid})
            return
        log.info("number released", extra={"sid": sid})

    async def send_sms(self, *, to: str, from_: str, body: str) -> None:
        """Send one text (the body cut to Twilio's 1,600 characters)."""
        message = await self._call(
            "sending a text",
            self._client.messages.create_async(to=to, from_=from_, body=body[:MAX_BODY]),
        )
        log.info("text sent", extra={"sid": str(message.sid)})

    async def _search(self, country: str, area_code: str | None) -> list[str]:
        """SMS-capable numbers for sale: local ones, else mobile ones (many countries text
        only from mobile numbers).  A type Twilio does not offer in *country* (404) is empty.
        """
        filters: dict[str, Any] = {"sms_enabled": True, "limit": SEARCH_LIMIT}
        if area_code:
            filters["area_code"] = area_code
        country_numbers = self._client.api.v2010.account.available_phone_numbers(country)
        for kind in ("local", "mobile"):
            listing = getattr(country_numbers, kind)
            try:
                found = await self._call(
                    "searching for a number", listing.list_async(**filters), passthrough=404
                )
            except _PassedThrough:
                continue
            phones = [str(n.phone_number) for n in found if _can_text(n.capabilities)]
            if phones:
                return phones
        return []

    async def _call(self, doing: str, call: Awaitable[T], *, passthrough: int = 0) -> T:
        """Await one client call; turn its failures into ProviderError.

        A refusal whose HTTP status or Twilio error code is *passthrough*
        raises :class:`_PassedThrough` instead, for the caller to handle.
        """
        try:
            return await call
        except TwilioRestException as exc:
            status, code, text = int(exc.status), exc.code, _rest_message(exc)
        except TwilioServiceException as exc:
            status, code = int(exc.status), exc.code
            text = str(exc.title) + (f": {exc.detail}" if exc.detail else "")
        except TwilioException as exc:
            # A list page that did not answer 200 comes as TwilioException(text, response).
            response = exc.args[1] if len(exc.args) > 1 else None
            if not isinstance(response, Response):
                raise self._error(
                    f"{doing}: Twilio's reply could not be read", retry=True
                ) from None
            status, code, text = _parse_error(response)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # ``from None``: aiohttp errors can carry the request, and with it
            # the Authorization header; never chain them into a log line.
            raise self._error(
                f"{doing}: Twilio could not be reached ({type(exc).__name__})", retry=True
            ) from None
        except ValueError as exc:  # a 2xx reply that is not the JSON it should be
            raise self._error(
                f"{doing}: Twilio's reply could not be read ({type(exc).__name__})", retry=True
            ) from None
        if passthrough and passthrough in (status, code):
            raise _PassedThrough(status, code)
        retry = status >= 500 or status == 429
        what = f"HTTP {status}" + (f", Twilio error {code}" if code and code != status else "")
        raise self._error(f"{doing}: Twilio refused ({what}): {text}", retry=retry)

    def _error(self, message: str, *, retry: bool) -> ProviderError:
        # Belt and braces: the token never reaches a message, even if a reply echoed it.
        return ProviderError(message.replace(self._auth_token, "[redacted]"), retry=retry)


class _PassedThrough(Exception):
    """A refusal the caller of ``_call`` asked to handle itself."""


def _can_text(capabilities: Any) -> bool:
    """Whether Twilio's capability flags allow SMS (``sms`` or, in older replies, ``SMS``)."""
    if not isinstance(capabilities, dict):
        return True  # the search already asked for SmsEnabled=true
    flags = {str(k).lower(): v for k, v in capabilities.items()}
    return flags.get("sms", True) is not False


def _rest_message(exc: TwilioRestException) -> str:
    """The text Twilio sent, without the client's "Unable to create record: " prefix."""
    msg = str(exc.msg)
    _, sep, rest = msg.partition(": ")
    return rest if sep and msg.startswith("Unable to ") else msg


def _parse_error(response: Response) -> tuple[int, int | None, str]:
    status = int(response.status_code)
    try:
        payload = json.loads(response.text)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        code = payload.get("code")
        text = payload.get("message") or payload.get("detail") or payload.get("title")
        return status, code if isinstance(code, int) else None, str(text or "no message")
    return status, None, "no message"
