"""``POST /sms/twilio`` (or ``GET``): Twilio's inbound-message webhook.

Twilio signs each request with ``X-Twilio-Signature``: HMAC-SHA1, keyed by
the account's auth token, over the URL it requested followed by every POST
parameter (sorted, multi-valued ones included).  A webhook configured as
``GET`` carries the parameters in the query string instead, and is signed by
that full URL alone.  Behind a TLS-terminating
proxy the URL this process sees is not the one Twilio requested, so the URL
checked is ``OTPGATE_PUBLIC_URL`` plus the request's own path and query.  The
check is the official ``twilio`` package's ``RequestValidator``.  Where a
Twilio Webhook Rule signs with a SharedKey instead (HMAC-SHA256, say), the
request names the key in ``X-Twilio-Webhooks-Signature-Settings`` and is
checked with that key from ``OTPGATE_TWILIO_SHARED_KEYS``.

A missing or bad signature is answered 403 and nothing is read further.  A
good request is answered with an empty TwiML ``<Response/>`` (no reply text
is sent), including for a number no credential owns: Twilio would otherwise
retry it and fall back to its fallback URL, for nothing.

Twilio adds parameters to its requests without notice and does not retry a
refused one, so a parameter not in :data:`KNOWN` is accepted (it is covered
by the signature like the rest); each such name is logged once per process,
for the operator.  A WhatsApp message names both ends ``whatsapp:+E.164``:
it goes to the credential of the number after the prefix, and its sender is
reported as Twilio gives it, prefix included.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_to_bytes, urlparse

from aiohttp import web
from multidict import MultiDict
from twilio.request_validator import (
    HMAC_SHA1,
    HMAC_SHA256,
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    add_port,
    compare,
    get_signature_algorithm,
    remove_port,
)

from gateway.api.container import SERVICES, Services
from gateway.api.errors import error_body
from gateway.api.inputs import read_capped
from gateway.api.openapi import ERROR, FORM, Answer, Operation, route, text
from gateway.errors import BadInput, Forbidden, StoreUnavailable
from gateway.services.sms import TWILIO
from gateway.settings import Settings
from gateway.validation import is_e164

log = logging.getLogger("otpgate.sms")

#: Where Twilio posts inbound texts, relative to ``OTPGATE_PUBLIC_URL``.
PATH = "/sms/twilio"

#: Largest form read: 1,600 characters of text, percent-encoded, and the rest.
MAX_FORM = 32 * 1024
MAX_PARAMS = 100
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

_SID = re.compile(r"^(SM|MM)[0-9a-f]{32}$")
_ACCOUNT = re.compile(r"^AC[0-9a-f]{32}$")

#: The parameters Twilio documents for an incoming message (Messaging, MMS,
#: WhatsApp and Add-ons).  Any other name is accepted and logged once.
KNOWN = frozenset(
    [
        "MessageSid",
        "SmsSid",
        "SmsMessageSid",
        "AccountSid",
        "MessagingServiceSid",
        "From",
        "To",
        "Body",
        "NumMedia",
        "NumSegments",
        "SmsStatus",
        "ApiVersion",
        "FromCity",
        "FromState",
        "FromZip",
        "FromCountry",
        "ToCity",
        "ToState",
        "ToZip",
        "ToCountry",
        "AddOns",
        "ProfileName",
        "WaId",
        "Forwarded",
        "FrequentlyForwarded",
        "ButtonText",
        "ButtonPayload",
        "Latitude",
        "Longitude",
        "Address",
        "Label",
        "ReferralNumMedia",
        "ReferralBody",
        "ReferralHeadline",
        "ReferralSourceId",
        "ReferralSourceType",
        "ReferralSourceUrl",
        "ReferralMediaId",
        "ReferralMediaContentType",
        "ReferralMediaUrl",
        "ReferralCtwaClid",
        "OriginalRepliedMessageSender",
        "OriginalRepliedMessageSid",
        "OptOutType",
        "MessageType",
        "ChannelMetadata",
        "ChannelInstallSid",
        "ChannelPrefix",
        "ChannelToAddress",
    ]
)
_NUMBERED = re.compile(r"^(MediaUrl|MediaContentType|ReferralMediaUrl)[0-9]{1,2}$")
#: The channel prefix Twilio puts before both numbers of a WhatsApp message.
WHATSAPP = "whatsapp:"
#: Unknown parameter names remembered (and logged) per process; past this, no more are logged.
MAX_UNKNOWN_NAMES = 256
#: The unknown parameter names already logged by this process (the app's lifetime).
UNKNOWN_NAMES = web.AppKey("twilio_unknown_parameters", set[str])


async def inbound(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    settings = services.settings
    if settings.twilio_auth_token is None and not settings.twilio_shared_keys:
        return error_body(
            503,
            "sms_not_configured",
            "inbound SMS needs OTPGATE_TWILIO_AUTH_TOKEN (or OTPGATE_TWILIO_SHARED_KEYS) "
            "to check Twilio's signatures",
        )
    if request.method == "GET":  # the parameters are in the URL, which is all that is signed
        params = _query(request)
        covered: MultiDict[str] = MultiDict()
    else:
        params = covered = await _form(request)
    signature = request.headers.get(SIGNATURE_HEADER, "")
    secret, algorithm = _signing_key(settings, request.headers.get(SIGNATURE_SETTINGS_HEADER))
    url = settings.public_url + request.raw_path
    if not (
        signature
        and secret is not None
        and signed(RequestValidator(secret), url, covered, signature, algorithm)
    ):
        services.metrics.messages.inc("sms", "rejected")
        raise Forbidden("the X-Twilio-Signature header is missing or wrong", code="bad_signature")
    account = params.get("AccountSid", "")
    if settings.twilio_account_sid is not None and account != settings.twilio_account_sid:
        raise Forbidden("this request is for another Twilio account", code="wrong_account")
    _note_unknown(request.app[UNKNOWN_NAMES], params)
    sid, sender, receiver, text = _fields(params)
    request_fields = {"sid": sid, "from": sender, "to": receiver, "text": text}
    try:
        await replay(services, request_fields)
    except StoreUnavailable:
        # Twilio never sends it again: keep it until the store is back.
        services.sms.keep(TWILIO, request_fields)
    return web.Response(text=TWIML_EMPTY, content_type="text/xml")


async def replay(services: Services, fields: dict[str, str]) -> None:
    """Route and store one text whose signature was checked (now, or when it was kept)."""
    route = await services.sms.route_for_number(fields["to"])
    await services.sms.accept(
        TWILIO, fields["sid"], receiver=fields["to"], route=route, sender=fields["from"],
        text=fields["text"],
    )  # fmt: skip


def _signing_key(settings: Settings, header: str | None) -> tuple[str | None, str]:
    """The secret and algorithm a request claims to be signed with; no secret if unknown.

    Without ``X-Twilio-Webhooks-Signature-Settings`` Twilio signs with the
    account's auth token and HMAC-SHA1.  A Webhook Rule can make it sign
    with a SharedKey instead, which the header names with its algorithm:
    then only that key counts, never the auth token.
    """
    if header is None:
        return settings.twilio_auth_token, HMAC_SHA1
    key_id = ""
    for part in header.split(","):
        name, eq, value = part.partition("=")
        if eq and name.strip() == "key":
            key_id = value.strip()
    secret = dict(settings.twilio_shared_keys).get(key_id)
    if secret is None:
        log.warning(
            "refused a text signed with a shared key not in OTPGATE_TWILIO_SHARED_KEYS",
            extra={"key_id": key_id[:128]},
        )
    algorithm = get_signature_algorithm(header).upper()
    if algorithm not in (HMAC_SHA1, HMAC_SHA256):
        return None, algorithm
    return secret, algorithm


def signed(
    validator: RequestValidator,
    url: str,
    params: MultiDict[str],
    signature: str,
    algorithm: str = HMAC_SHA1,
) -> bool:
    """``validator.validate(url, params, signature, algorithm)``, with one HMAC where one does.

    ``RequestValidator.validate`` signs the URL both without and with its
    port (Twilio is not consistent about it) and always computes both; this
    tries the URL as configured first and stops at the first that matches,
    with the package's own signing and constant-time comparison.
    """
    parsed = urlparse(url)
    forms = (add_port, remove_port) if parsed.port else (remove_port, add_port)
    return any(
        compare(validator.compute_signature(form(parsed), params, algorithm), signature)
        for form in forms
    )


async def _form(request: web.Request) -> MultiDict[str]:
    """Every POST parameter, multi-valued ones kept, decoded strictly as UTF-8."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise BadInput("send the parameters form-encoded, as Twilio does", code="bad_input")
    raw = await read_capped(request, MAX_FORM)
    try:
        pairs = parse_form(raw)
    except UnicodeDecodeError:
        raise BadInput("the form is not valid UTF-8", code="bad_encoding") from None
    except ValueError:
        raise BadInput("the form is not well-formed or has too many fields") from None
    return MultiDict(pairs)


def _query(request: web.Request) -> MultiDict[str]:
    """A GET webhook's parameters: the query string, read as strictly as a form body."""
    query = request.raw_path.partition("?")[2]
    try:
        pairs = parse_form(query.encode("utf-8", "surrogateescape"))
    except UnicodeDecodeError:
        raise BadInput("the query string is not valid UTF-8", code="bad_encoding") from None
    except ValueError:
        raise BadInput("the query string is not well-formed or has too many fields") from None
    return MultiDict(pairs)


def parse_form(raw: bytes) -> list[tuple[str, str]]:
    """A form body's pairs, in order: ``parse_qsl`` in its strict mode, on bytes.

    Every field must have ``=``; escapes must decode as UTF-8 and the body
    itself must be ASCII (both raise :class:`UnicodeDecodeError`); more than
    :data:`MAX_PARAMS` fields raise :class:`ValueError`.  Working on the
    bytes costs half of what ``parse_qsl`` does on a Twilio form.
    """
    if not raw:
        return []
    if not raw.isascii():
        raw.decode("ascii")  # raises, naming the first byte that is not
    fields = raw.split(b"&")
    if len(fields) > MAX_PARAMS:
        raise ValueError("too many fields")
    pairs = []
    for field in fields:
        name, eq, value = field.partition(b"=")
        if not eq:
            raise ValueError("a field without '='")
        pairs.append(
            (
                unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8"),
                unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8"),
            )
        )
    return pairs


def _note_unknown(logged: set[str], params: MultiDict[str]) -> None:
    """Log each parameter name Twilio did not document when this was written, once."""
    for name in params:
        if name in KNOWN or name in logged or _NUMBERED.match(name):
            continue
        if len(logged) >= MAX_UNKNOWN_NAMES:
            return
        logged.add(name)
        log.warning(
            "a text has a parameter Twilio added since this version; accepted",
            extra={"parameter": ascii(name[:64])},
        )


def _fields(params: MultiDict[str]) -> tuple[str, str, str, str]:
    """Check a signed request's parameters; (MessageSid, From, To without its channel, Body)."""
    missing = [n for n in ("MessageSid", "From", "To", "Body") if n not in params]
    if missing:
        raise BadInput(f"missing parameter(s): {', '.join(missing)}", code="missing_parameter")
    for name in ("MessageSid", "From", "To"):
        if len(params.getall(name)) != 1:
            raise BadInput(f"{name} must appear once")
    sid, sender, receiver, text = (params[n] for n in ("MessageSid", "From", "To", "Body"))
    receiver = receiver.removeprefix(WHATSAPP)
    if not _SID.match(sid):
        raise BadInput("MessageSid is not a Twilio message id")
    if not is_e164(receiver):
        raise BadInput("To is not a number in E.164 form (or whatsapp:+E.164)")
    if not sender or len(sender) > 64 or not sender.isprintable():
        raise BadInput("From is empty, too long or not printable")
    return sid, sender, receiver, text


def setup_routes(app: web.Application) -> None:
    app[UNKNOWN_NAMES] = set()
    answers: dict[int, Answer] = {
        200: (
            "Stored, a redelivery, or an unowned number",
            text("text/xml", "an empty TwiML <Response/>"),
        ),
        400: ("Malformed or missing parameters", ERROR),
        403: ("Missing or bad signature, or another account", ERROR),
        413: ("Body over 1,600 characters", ERROR),
        429: ("Too many texts for the number or from the sender", ERROR),
        503: ("OTPGATE_TWILIO_AUTH_TOKEN is not set", ERROR),
    }
    route(
        app,
        "POST",
        PATH,
        inbound,
        Operation(
            "Twilio's inbound-message webhook (form-encoded, X-Twilio-Signature)",
            answers,
            raw_body=(FORM, _FORM_SCHEMA),
            auth=None,
        ),
    )
    route(
        app,
        "GET",
        PATH,
        inbound,
        Operation(
            "Twilio's inbound-message webhook configured as GET (the parameters in the "
            "query string, X-Twilio-Signature)",
            answers,
            auth=None,
        ),
    )


#: What the document says of Twilio's form: the fields read; Twilio may add others.
_FORM_SCHEMA = {
    "type": "object",
    "required": ["MessageSid", "From", "To", "Body"],
    "properties": {
        "MessageSid": {"type": "string", "pattern": "^(SM|MM)[0-9a-f]{32}$"},
        "AccountSid": {"type": "string"},
        "From": {"type": "string", "description": "E.164, or whatsapp:+E.164"},
        "To": {"type": "string", "description": "E.164, or whatsapp:+E.164"},
        "Body": {"type": "string", "maxLength": 1600},
    },
}
