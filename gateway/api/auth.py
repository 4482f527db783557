"""Who is calling: the API key in ``Authorization: Bearer``, checked by the tenant service."""

from __future__ import annotations

from aiohttp import web

from ..errors import Forbidden, Unauthenticated
from ..services.tenants import ADMIN
from .container import SERVICES
from .inputs import object_id


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


async def tenant_and_id(request: web.Request, name: str = "id") -> tuple[str, str]:
    """The calling tenant and the object id in the path, in that order.

    The key is checked first: a caller without a valid key gets 401 (or 403),
    never a 404 that would say something about the id.
    """
    return await tenant_of(request), object_id(request, name)
