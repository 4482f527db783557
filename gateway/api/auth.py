"""Who is calling and what they may do.

Every route with an ``auth`` access level is registered through :func:`guard`
(``openapi.route``), and :func:`authorize`, called by the error middleware,
checks the ``Authorization: Bearer`` key with the tenant service, then its
role against the route's access (``gateway.roles``), then its credential
limit, before the handler runs.  So
a caller without a valid key gets 401 and a caller whose role may not gets
403, never a 404 that would say something about an id.  The handler finds
the caller with :func:`principal_of`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from ..errors import Forbidden, NotFound, RateLimited, Unauthenticated
from ..roles import Access, allows, who_may
from ..services.audit import Actor
from ..services.ratelimit import FailedAttempts
from ..services.tenants import ADMIN, Principal
from .container import SERVICES
from .inputs import object_id

_PRINCIPAL = web.RequestKey("otpgate.principal", Principal)
#: Failed authentications per client address, shared by the API, the submit pages and
#: the pages' sign-in (the composition root puts one in the application).
AUTH_FAILURES = web.AppKey("auth_failures", FailedAttempts)
#: Failures from one address: a burst of this many, refilled over a minute (the
#: default of OTPGATE_AUTH_FAILURES_PER_MINUTE).
FAILURES_PER_MINUTE = 10
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _bearer(request: web.Request) -> str:
    """The key in ``Authorization: Bearer <key>``; printable ASCII only.

    aiohttp hands over header bytes that are not UTF-8 as surrogates, which
    no key holds (and which would not encode for the keyed hash).
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("send the API key as 'Authorization: Bearer <key>'")
    if not (token.isascii() and token.isprintable()):
        raise Unauthenticated("the API key is missing or not valid")
    return token


def check(principal: Principal, access: Access, *, bound: bool) -> None:
    """Forbidden unless *principal* may use a route of *access*."""
    if access == Access.ADMIN:
        if principal.role != ADMIN:
            raise Forbidden("this route needs the admin key")
        return
    if principal.role == ADMIN:
        raise Forbidden("the admin key manages tenants; use a tenant's API key here")
    if not allows(principal.role, access):
        raise Forbidden(
            f"an API key with the role {principal.role} may not do this "
            f"(it needs {' or '.join(who_may(access))})"
        )
    if principal.credential_ids is not None and not bound:
        raise Forbidden("this API key is limited to some credentials; this route reaches them all")


@dataclass(frozen=True, slots=True)
class Guard:
    """What a route asks of its caller's key: an access level, and whether it names one
    credential (a key limited to some credentials may call it)."""

    access: Access
    bound: bool


#: Each guarded route's handler, as registered, and its guard (:func:`authorize` applies it).
GUARDS = web.AppKey("otpgate.guards", dict[Handler, Guard])


def guard(app: web.Application, handler: Handler, access: Access, *, bound: bool) -> Handler:
    """*handler*, to be registered on *app* as a route whose caller's key may use *access*.

    A partial of the handler, one for each route, not a coroutine around it:
    :func:`authorize` checks the key before the handler runs, so a long poll,
    one of thousands parked at once, waits in one frame less.
    """
    guarded = functools.update_wrapper(functools.partial(handler), handler)
    guards = app.get(GUARDS)
    if guards is None:
        guards = app[GUARDS] = {}
    guards[guarded] = Guard(access, bound)
    return guarded


async def authorize(request: web.Request) -> None:
    """Check the caller's key against the route's guard, if it has one.

    The error middleware calls it before the route's handler; a guarded
    handler finds the caller with :func:`principal_of`.
    """
    found = request.config_dict.get(GUARDS, {}).get(request.match_info.handler)
    if found is None:
        return
    key = _bearer(request)
    async with attempt(request, key, "API keys"):
        principal = await request.app[SERVICES].tenants.authenticate(key)
    check(principal, found.access, bound=found.bound)
    request[_PRINCIPAL] = principal


def client_address(request: web.Request) -> str:
    """The address the request came from: the connecting one, or the client a trusted
    front names in ``X-Forwarded-For`` (``OTPGATE_HTTP_TRUSTED_PROXIES``)."""
    peer = request.remote or "unknown"
    trusted = request.config_dict[SERVICES].settings.http_trusted_proxies
    forwarded: list[str] = request.headers.getall("X-Forwarded-For", [])
    return trusted.client(peer, forwarded)


@contextlib.asynccontextmanager
async def attempt(request: web.Request, secret: str, what: str) -> AsyncIterator[None]:
    """Check *secret* within the client address's allowance of failures.

    The secret is always checked: a valid one is served at once, whatever the
    address did before.  An Unauthenticated or NotFound raised inside counts as
    a failure; past the allowance it is held a moment and answered 429 (with
    ``Retry-After``) instead.
    """
    failures = request.config_dict[AUTH_FAILURES]
    client = client_address(request)
    over = failures.wait(client)
    try:
        yield
    except (Unauthenticated, NotFound):
        failures.failed(client)
        if over <= 0:
            raise
        retry = await failures.refuse(client, over)
        raise RateLimited(
            f"too many wrong {what} from this address; try again later",
            code="too_many_failures",
            retry_after=retry,
        ) from None


def principal_of(request: web.Request) -> Principal:
    """The caller, as the route's guard found it."""
    return request[_PRINCIPAL]


def actor_of(request: web.Request) -> Actor:
    """The caller, as the audit trail names it."""
    return principal_of(request).actor


async def tenant_of(request: web.Request) -> str:
    """The calling tenant's id."""
    tenant = principal_of(request).tenant_id
    assert tenant is not None  # the guard refuses the admin key on tenant routes
    return tenant


async def tenant_and_id(request: web.Request, name: str = "id") -> tuple[str, str]:
    """The calling tenant and the object id in the path, in that order."""
    return await tenant_of(request), object_id(request, name)


async def credential_of(request: web.Request, name: str = "id") -> tuple[str, str]:
    """The calling tenant and the credential id in the path.

    A credential the key is not limited to answers 404, as another tenant's does.
    """
    tenant, cred_id = await tenant_and_id(request, name)
    if not principal_of(request).reaches(cred_id):
        raise NotFound("no such credential")
    return tenant, cred_id


async def interaction_of(request: web.Request, name: str = "id") -> tuple[str, str]:
    """The calling tenant and the interaction id in the path, within the key's credentials."""
    return await _of_credential(
        request, name, request.app[SERVICES].interactions.credential_of, "no such interaction"
    )


async def login_of(request: web.Request, name: str = "id") -> tuple[str, str]:
    """The calling tenant and the login id in the path, within the key's credentials."""
    return await _of_credential(
        request, name, request.app[SERVICES].logins.credential_of, "no such login"
    )


async def _of_credential(
    request: web.Request,
    name: str,
    credential_of: Callable[[str, str], Awaitable[str | None]],
    unknown: str,
) -> tuple[str, str]:
    """The tenant and an object id; 404 when the key's credential limit excludes its credential.

    The object's credential is looked up only for a key with a limit.
    """
    tenant, object_id_ = await tenant_and_id(request, name)
    principal = principal_of(request)
    if principal.credential_ids is not None:
        cred_id = await credential_of(tenant, object_id_)
        if cred_id is None or not principal.reaches(cred_id):
            raise NotFound(unknown)
    return tenant, object_id_
