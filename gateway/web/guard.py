"""The headers every page goes out with, the origin check, the session, and error pages.

One middleware runs around every page of ``/ui``:

- it sets the strict headers (a Content-Security-Policy that allows only the
  gateway's own script, stylesheet and form targets, no framing, no
  sniffing, no caching of pages with data);
- it refuses a POST whose ``Origin`` (or, without one, ``Referer``) is not
  the gateway's public origin;
- it finds the session in the cookie and asks the tenant service about its
  key on every request, so a revoked or expired key ends the session at once;
- it turns every error into an HTML page (a person never sees JSON or a
  stack trace) and a missing session into a redirect to the sign-in page.

The referrer policy is ``same-origin`` rather than ``no-referrer``: under
``no-referrer`` browsers send ``Origin: null`` with a form's POST, which
would defeat the origin check; the pages link to no other site anyway.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..api.container import SERVICES
from ..api.errors import RETRY_AFTER, status_of
from ..api.limits import BodyTooSlow
from ..errors import Forbidden, RateLimited, RequestError, StoreUnavailable
from ..validation import origin_header, origin_of
from .identity import (
    PERSON,
    PREFIX,
    SESSION_COOKIE,
    SIGN_IN_ROLES,
    Person,
    SignInNeeded,
    clear_session_cookie,
    maybe_person,
)
from .render import error_page, see_other

log = logging.getLogger("otpgate.web")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _check_origin(request: web.Request) -> None:
    """Refuse a POST made by a page of another origin (or one that names none)."""
    public = origin_of(request.app[SERVICES].settings.public_url)
    origin = request.headers.get("Origin")
    if origin is not None:
        seen = origin_header(origin)
    else:
        referer = request.headers.get("Referer")
        seen = origin_of(referer) if referer is not None else None
    if seen is None or seen != public:
        raise Forbidden("this form can only be sent from the gateway's own pages", code="origin")


async def _resolve(request: web.Request) -> Person | None:
    """The person whose live session the cookie names, with a key that still works."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    services = request.app[SERVICES]
    session = await services.web_sessions.find(token)
    if session is None:
        return None
    principal = await services.tenants.principal_of_key(session.key_id)
    if (
        principal is None
        or principal.tenant_id != session.tenant_id
        or principal.role not in SIGN_IN_ROLES
    ):
        await services.web_sessions.end(token)
        return None
    return Person(principal, session, token)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Headers, origin check, session and HTML errors for every page (see the module doc)."""
    static = request.path.startswith(PREFIX + "/static/")
    had_cookie = SESSION_COOKIE in request.cookies
    try:
        if not static:
            found = await _resolve(request)
            if found is not None:
                request[PERSON] = found
        if request.method == "POST":
            _check_origin(request)
        response = await handler(request)
    except SignInNeeded:
        response = see_other(PREFIX + "/")
    except RequestError as exc:
        response = error_page(request, status_of(exc), exc.message)
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        elif isinstance(exc, StoreUnavailable):
            response.headers["Retry-After"] = str(RETRY_AFTER)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_page(request, exc.status, None)
    except BodyTooSlow:
        response = error_page(request, 408, None)
        response.force_close()
    except Exception:
        log.exception("unexpected error on a page", extra={"path": request.path})
        response = error_page(request, 500, None)
    if (
        had_cookie
        and not static
        and maybe_person(request) is None
        and SESSION_COOKIE not in response.cookies
    ):
        clear_session_cookie(request, response)
    response.headers.update(HEADERS)
    if not static:
        response.headers["Cache-Control"] = "no-store"
    return response
