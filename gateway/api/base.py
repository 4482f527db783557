"""What every view shares: the services, the error middleware, auth and JSON helpers."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from .. import ids, timestamps
from ..errors import (
    BadInput,
    Conflict,
    Expired,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    RequestError,
    TooLarge,
    Unauthenticated,
    Unavailable,
    UpstreamFailed,
    VaultError,
)
from ..metrics import Metrics
from ..services.android import AndroidDevices
from ..services.codes import CodeService
from ..services.credentials import CredentialService
from ..services.forward_delivery import LeasedCopy
from ..services.forwards import ForwardRules
from ..services.inbound import InboundService
from ..services.interactions import InteractionService
from ..services.numbers import NumberProvider
from ..services.outbox import Outbox
from ..services.sms import SmsService
from ..services.tenants import ADMIN, TenantService
from ..services.webhook_delivery import LeasedDelivery
from ..services.webhooks import WebhookEndpoints
from ..settings import Settings
from ..store.db import Database

log = logging.getLogger("otpgate.http")

M = TypeVar("M", bound=BaseModel)


@dataclass(slots=True)
class Lifecycle:
    """What the process is doing: serving, or draining before it stops."""

    draining: bool = False


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    db: Database
    metrics: Metrics
    tenants: TenantService
    credentials: CredentialService
    codes: CodeService
    inbound: InboundService
    webhook_endpoints: WebhookEndpoints
    #: Sends webhook deliveries (its sender: a WebhookDelivery).
    webhook_outbox: Outbox[LeasedDelivery]
    interactions: InteractionService
    forward_rules: ForwardRules
    #: Sends forwarded copies (its sender: a ForwardDelivery).
    forward_outbox: Outbox[LeasedCopy]
    sms: SmsService
    android: AndroidDevices
    lifecycle: Lifecycle
    #: Buys and releases phone numbers; None when Twilio is not configured.
    numbers: NumberProvider | None = None


SERVICES = web.AppKey("services", Services)

_STATUS: dict[type[RequestError], int] = {
    BadInput: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Expired: 410,
    TooLarge: 413,
    Invalid: 422,
    RateLimited: 429,
    UpstreamFailed: 502,
    Unavailable: 503,
}

_HTTP_CODES = {
    400: "bad_input",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "expired",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
}


def error_body(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def status_of(exc: RequestError) -> int:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 400


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn every error into the contract's JSON body; never a stack trace."""
    try:
        response = await handler(request)
    except RequestError as exc:
        response = error_body(status_of(exc), exc.code, exc.message)
        if isinstance(exc, Unauthenticated):
            response.headers["WWW-Authenticate"] = "Bearer"
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _http_error(exc)
    except VaultError:
        log.error("a stored secret could not be opened", extra={"route": _route(request)})
        response = error_body(500, "vault_error", "a stored secret could not be opened")
    except Exception:
        log.exception("unexpected error", extra={"route": _route(request)})
        response = error_body(500, "internal_error", "the gateway failed to answer; see its log")
    request.app[SERVICES].metrics.http_requests.inc(f"{response.status // 100}xx")
    return response


def _http_error(exc: web.HTTPException) -> web.Response:
    status = exc.status
    if status == 404:
        message = "there is no such route"
    elif status == 405:
        message = "this route does not accept that method"
    elif status == 413:
        message = "the request body is too large"
    else:
        message = exc.reason
    response = error_body(status, _HTTP_CODES.get(status, "http_error"), message)
    if status == 405 and "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response


def _route(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info.route is not None else None
    return resource.canonical if resource is not None else "<unmatched>"


# -- authentication -------------------------------------------------------------


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send the API key as 'Authorization: Bearer <key>'")
    return token.strip()


async def tenant_of(request: web.Request) -> str:
    """The calling tenant's id; 401 without a valid key, 403 for the admin key."""
    principal = await request.app[SERVICES].tenants.authenticate(_bearer(request))
    if principal.tenant_id is None:
        raise Forbidden("the admin key manages tenants; use a tenant's API key here")
    return principal.tenant_id


async def require_admin(request: web.Request) -> None:
    principal = await request.app[SERVICES].tenants.authenticate(_bearer(request))
    if principal.role != ADMIN:
        raise Forbidden("this route needs the admin key")


# -- input ------------------------------------------------------------------------


async def read_capped(request: web.Request, cap: int) -> bytes:
    """The whole body, or 413 as soon as it is known to be over *cap* bytes.

    For routes that read the body themselves (a form, a raw body that is
    signed): ``content.read(n)`` alone returns what has arrived so far,
    which may be only part of it.
    """
    if request.content_length is not None and request.content_length > cap:
        raise TooLarge(f"the body must be at most {cap} bytes")
    body = bytearray()
    while chunk := await request.content.read(cap + 1 - len(body)):
        body += chunk
        if len(body) > cap:
            raise TooLarge(f"the body must be at most {cap} bytes")
    return bytes(body)


async def json_body(request: web.Request, model: type[M]) -> M:
    """Parse and validate a JSON object body; 400 for bad JSON, 422 for bad content."""
    raw = await request.read()  # 413 past the app's client_max_size
    return validate(model, json_object(raw))


def json_object(raw: bytes) -> dict[str, Any]:
    """A body that must be one JSON object; 400 for anything else."""
    if not raw.strip():
        raise BadInput("the request needs a JSON object body")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadInput("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    return data


def validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid(describe_validation(exc)) from None


def describe_validation(exc: ValidationError) -> str:
    """The first problem, naming the field and never repeating its value."""
    err = exc.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "body"
    if err["type"] == "extra_forbidden":
        return f"unknown field '{where}'"
    if err["type"] == "missing":
        return f"'{where}' is required"
    message = str(err["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return f"'{where}': {message}"


def object_id(request: web.Request, name: str = "id") -> str:
    """A path id; anything that cannot be an id is simply not found."""
    value = request.match_info[name]
    if not ids.looks_like_id(value):
        raise NotFound("no such object")
    return value


def query_number(
    request: web.Request, name: str, *, default: float, low: float, high: float
) -> float:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadInput(f"'{name}' must be a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise Invalid(f"'{name}' must be between {low:g} and {high:g}")
    return value


def query_time(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace(" ", "+"))
    except ValueError:
        raise BadInput(f"'{name}' must be an ISO 8601 time, such as 2026-01-02T03:04:05Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


# -- output -------------------------------------------------------------------------


def iso(ts: float | None) -> str | None:
    """A stored time as the API shows it (see :mod:`gateway.timestamps`); None stays None."""
    return None if ts is None else timestamps.iso(ts)
