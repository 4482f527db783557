"""``POST /sms/android``: the ``sms:received`` webhook of SMS Gateway for Android.

A second SMS route for numbers Twilio cannot serve (OTP filtering, short
codes): a phone with the app and a SIM posts each incoming text here.  The
app signs the raw body: ``X-Signature`` is the hexadecimal HMAC-SHA256, keyed
by the signing key set in the app, of the body followed by ``X-Timestamp``
(UNIX seconds).  The device's ``deviceId`` (and the ``simNumber`` the text
arrived on) picks the credential, whose sealed copy of the key checks the
signature.  Timestamps more than five minutes off are refused, so a captured
request cannot be replayed later; the event ``id``, stable across the app's
retries, is stored once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any

from aiohttp import web

from gateway.api.container import SERVICES, Services
from gateway.api.inputs import read_capped
from gateway.api.openapi import ERROR, Operation, route
from gateway.api.replies import json_response
from gateway.errors import BadInput, Forbidden, StoreUnavailable
from gateway.services.android import pick_route
from gateway.services.sms import ANDROID

#: Where the app posts its events, relative to ``OTPGATE_PUBLIC_URL``.
PATH = "/sms/android"
MAX_BODY = 16 * 1024
#: Seconds a signature's timestamp may be off from this host's clock.
MAX_SKEW = 300
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
#: UNIX seconds in ASCII digits (up to year 33658).
_STAMP = re.compile(r"[0-9]{1,12}")
#: Top-level fields the app sends; anything else is refused.
KNOWN = frozenset({"deviceId", "event", "id", "payload", "webhookId"})
#: Events the app may send that carry no incoming text: acknowledged, ignored.
OTHER_EVENTS = frozenset(
    {"sms:sent", "sms:delivered", "sms:failed", "sms:data-received", "mms:received", "system:ping"}
)


async def inbound(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    # The headers are checked before the body is read: their form, then the time.
    signature, stamp = _signature_headers(request)
    now = time.time()
    if abs(now - int(stamp)) > MAX_SKEW:
        raise Forbidden("X-Timestamp is more than five minutes off", code="stale_signature")
    raw = await _body(request)
    _json(raw)  # a malformed body is refused now, not kept
    try:
        status = await _take(services, raw, signature, stamp, now)
    except StoreUnavailable:
        # The device's key is in the store too: the signature is checked when
        # the request is taken in, against the time it arrived.
        kept = {"raw": raw.decode(), "signature": signature, "stamp": stamp, "at": now}
        services.sms.keep(ANDROID, kept)
        status = "ok"
    return json_response({"status": status})


async def replay(services: Services, kept: dict[str, Any]) -> None:
    """Take in a request kept while the store was away."""
    raw = str(kept["raw"]).encode()
    signature, stamp = _well_formed(str(kept["signature"]), str(kept["stamp"]))
    await _take(services, raw, signature, stamp, float(kept["at"]))


async def _take(services: Services, raw: bytes, signature: str, stamp: str, now: float) -> str:
    """Check the event's signature and store its text; ``ok`` or ``ignored``."""
    # The key that signs the body is the device's, and the device is named
    # only in the body: it is parsed (safely) before the signature is checked,
    # but nothing in it is used until the signature holds.
    event = _json(raw)
    device_id = event.get("deviceId")
    payload = event.get("payload")
    sim = payload.get("simNumber") if isinstance(payload, dict) else None
    sim_ok = sim is None or (isinstance(sim, int) and not isinstance(sim, bool))
    mapping = (
        pick_route(await services.android.device_routes(device_id), sim if sim_ok else None)
        if isinstance(device_id, str) and _is_text(device_id, 64)
        else None
    )
    # An unknown device is refused exactly like a bad signature: nothing
    # tells a prober which device ids exist.
    expected = hmac.new(
        mapping.signing_key if mapping else b"\0", raw + stamp.encode(), hashlib.sha256
    ).hexdigest()
    if mapping is None or not hmac.compare_digest(expected, signature):
        services.metrics.messages.inc("sms", "rejected")
        raise Forbidden("the X-Signature header is missing or wrong", code="bad_signature")
    if abs(now - int(stamp)) > MAX_SKEW:
        raise Forbidden("X-Timestamp is more than five minutes off", code="stale_signature")
    unknown = sorted(set(event) - KNOWN)
    if unknown:
        raise BadInput(f"unknown field {unknown[0][:64]!r}", code="unknown_parameter")
    if not sim_ok:
        raise BadInput("payload.simNumber must be a number or null")
    device_id = _text(event, "deviceId", 64)
    kind = _text(event, "event", 40)
    if kind in OTHER_EVENTS:
        return "ignored"
    if kind != "sms:received":
        raise BadInput(f"unknown event {kind!r}")
    if not isinstance(payload, dict):
        raise BadInput("payload must be an object")
    text = payload.get("message")
    if not isinstance(text, str):
        raise BadInput("payload.message must be a string")
    sender = _text(payload, "phoneNumber", 64)
    await services.sms.accept(
        ANDROID,
        _text(event, "id", 64),
        receiver=f"{device_id}:{sim}",
        route=mapping.route,
        sender=sender,
        text=text,
    )
    return "ok"


def _signature_headers(request: web.Request) -> tuple[str, str]:
    """``X-Signature`` (64 hexadecimal digits, lower-cased) and ``X-Timestamp`` (ASCII digits).

    Anything else is refused before it reaches the HMAC or ``int()``: a
    non-ASCII signature made ``compare_digest`` raise, and ``int()`` reads
    other scripts' digits.
    """
    signature = request.headers.get("X-Signature", "")
    stamp = request.headers.get("X-Timestamp", "")
    if not signature or not stamp:
        raise Forbidden("X-Signature and X-Timestamp are required", code="bad_signature")
    return _well_formed(signature, stamp)


def _well_formed(signature: str, stamp: str) -> tuple[str, str]:
    """The signature (lower-cased) and time, refused unless of their form."""
    if _HEX64.fullmatch(signature) is None:
        raise Forbidden("the X-Signature header is missing or wrong", code="bad_signature")
    if _STAMP.fullmatch(stamp) is None:
        raise Forbidden("X-Timestamp must be UNIX seconds", code="stale_signature")
    return signature.lower(), stamp


async def _body(request: web.Request) -> bytes:
    return await read_capped(request, MAX_BODY)


def _json(raw: bytes) -> dict[str, Any]:
    try:
        event = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadInput("the body is not valid UTF-8", code="bad_encoding") from None
    except ValueError:
        raise BadInput("the body is not JSON") from None
    except RecursionError:
        raise BadInput("the body's JSON is nested too deeply") from None
    if not isinstance(event, dict):
        raise BadInput("the body must be a JSON object")
    return event


def _is_text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and value.isprintable()


def _text(obj: dict[str, Any], name: str, limit: int) -> str:
    value = obj.get(name)
    if not _is_text(value, limit):
        raise BadInput(f"{name} must be a non-empty string of at most {limit} characters")
    assert isinstance(value, str)
    return value


def setup_routes(app: web.Application) -> None:
    route(
        app,
        "POST",
        PATH,
        inbound,
        Operation(
            "SMS Gateway for Android's sms:received webhook (X-Signature, X-Timestamp)",
            {
                200: (
                    "Stored, a redelivery, or an ignored event",
                    {
                        "type": "object",
                        "required": ["status"],
                        "properties": {"status": {"enum": ["ok", "ignored"]}},
                    },
                ),
                400: ("Malformed", ERROR),
                403: ("Missing or bad signature, unknown device, stale timestamp", ERROR),
                413: ("Message over 1,600 characters", ERROR),
                429: ("Too many texts", ERROR),
            },
            auth=None,
        ),
    )
