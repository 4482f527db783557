"""Errors as HTTP answers: the one place the contract's JSON error body is made.

Domain errors (``gateway.errors``) carry no protocol codes; a table
maps each kind to its HTTP status, and :func:`error_middleware` turns every
error a view raises (domain, aiohttp's own, or unexpected) into
``{"error": {"code", "message"}}``, never a stack trace.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..errors import (
    BadInput,
    Conflict,
    Expired,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    RequestError,
    StoreUnavailable,
    TooLarge,
    Unauthenticated,
    Unavailable,
    UpstreamFailed,
    VaultError,
)
from .auth import authorize
from .container import SERVICES
from .limits import BodyTooSlow, too_large
from .replies import json_response

log = logging.getLogger("otpgate.http")

#: The HTTP status of each kind of domain error (subclasses inherit theirs).
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

#: Seconds a client is asked to wait when the database cannot be reached.
RETRY_AFTER = 2

#: The error code of each status aiohttp itself answers with.
_HTTP_CODES = {
    400: "bad_input",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "expired",
    408: "timeout",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
}


def error_body(status: int, code: str, message: str) -> web.Response:
    return json_response({"error": {"code": code, "message": message}}, status=status)


def status_of(exc: RequestError) -> int:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 400


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Check the caller's key where the route asks for one (``auth.authorize``), then turn
    every error into the contract's JSON body; never a stack trace."""
    response: web.StreamResponse
    try:
        if (refused := too_large(request)) is not None:
            response = refused
        else:
            await authorize(request)  # the route's guard, if it has one
            response = await handler(request)
    except RequestError as exc:
        response = error_body(status_of(exc), exc.code, exc.message)
        if isinstance(exc, Unauthenticated):
            response.headers["WWW-Authenticate"] = "Bearer"
        elif isinstance(exc, StoreUnavailable):
            response.headers["Retry-After"] = str(RETRY_AFTER)
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _http_error(exc)
    except BodyTooSlow:
        response = error_body(408, "timeout", "the request body did not arrive in time")
        response.force_close()
    except VaultError:
        log.error("a stored secret could not be opened", extra={"route": _route(request)})
        response = error_body(500, "vault_error", "a stored secret could not be opened")
    except Exception:
        log.exception("unexpected error", extra={"route": _route(request)})
        response = error_body(500, "internal_error", "the gateway failed to answer; see its log")
    request.app[SERVICES].metrics.http_requests.inc(f"{response.status // 100}xx")
    return response


def _http_error(exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusal (no such route, wrong method, body too large) as JSON."""
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
