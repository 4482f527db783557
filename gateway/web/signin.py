"""Signing in with an owner's or manager's API key, and signing out.

The key is checked by the tenant service exactly as the API checks it and is
never stored: the session keeps only the key's id.  Attempts are limited per
client address (a token bucket, so a person who types a key right is never
slowed); agent keys and the admin key are refused with the reason.
"""

from __future__ import annotations

from aiohttp import web

from ..api.auth import AUTH_FAILURES, FAILURES_PER_MINUTE, attempt
from ..api.container import SERVICES
from ..errors import Unauthenticated
from .identity import (
    PREFIX,
    PRESESSION_COOKIE,
    SESSION_COOKIE,
    SIGN_IN_ROLES,
    clear_session_cookie,
    cookie_secure,
    form,
    maybe_person,
)
from .render import render, see_other

#: Failed sign-ins per client address: a burst of this many, refilled over a minute
#: (the API's and the submit pages' failures count in the same allowance).
ATTEMPTS_PER_MINUTE = FAILURES_PER_MINUTE
SIGN_IN_LIMIT = AUTH_FAILURES
#: Longest key the field takes (the tenant service refuses longer ones anyway).
_MAX_KEY = 256


def sign_in_page(
    request: web.Request, *, error: str | None = None, status: int = 200
) -> web.Response:
    return render(request, "signin.html", {"title": "Sign in", "error": error}, status=status)


async def sign_in(request: web.Request) -> web.StreamResponse:
    """POST /ui/sign-in: a session for a valid owner or manager key."""
    fields = await form(request)
    key = fields.get("api_key", "").strip()
    if not key:
        return sign_in_page(request, error="Enter an API key.", status=422)
    services = request.app[SERVICES]
    try:
        # The API's allowance of failures per client address, held and answered 429 past it.
        async with attempt(request, key, "sign-in keys"):
            if len(key) > _MAX_KEY:
                raise Unauthenticated("not an API key")
            principal = await services.tenants.authenticate(key)
    except Unauthenticated:
        return sign_in_page(
            request, error="That key is not valid, or it was revoked or expired.", status=401
        )
    if principal.tenant_id is None:
        return sign_in_page(
            request,
            error="The admin key manages tenants only; sign in with an owner or manager key.",
            status=403,
        )
    if principal.role not in SIGN_IN_ROLES or principal.key_id is None:
        return sign_in_page(
            request,
            error="Agent keys cannot sign in here; use an owner or manager key.",
            status=403,
        )
    earlier = maybe_person(request)
    if earlier is not None:  # signing in again: the earlier session ends
        await services.web_sessions.end(earlier.token)
    token = await services.web_sessions.start(principal.tenant_id, principal.key_id)
    response = see_other(PREFIX + "/")
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path=PREFIX + "/",
        httponly=True,
        samesite="Strict",
        secure=cookie_secure(request),
    )
    response.del_cookie(PRESESSION_COOKIE, path=PREFIX + "/")
    return response


async def sign_out(request: web.Request) -> web.StreamResponse:
    """POST /ui/sign-out: the session ends here and now."""
    await form(request)
    who = maybe_person(request)
    if who is not None:
        await request.app[SERVICES].web_sessions.end(who.token)
    response = see_other(PREFIX + "/")
    clear_session_cookie(request, response)
    return response


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/sign-in", sign_in)
    app.router.add_post("/sign-out", sign_out)
