"""``/v1/tenants``: the admin creates tenants and receives each one's first key."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints

from .base import SERVICES, json_body, require_admin

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Name


async def create_tenant(request: web.Request) -> web.Response:
    await require_admin(request)
    body = await json_body(request, TenantIn)
    tenant = await request.app[SERVICES].tenants.create(body.name)
    return web.json_response(
        {"id": tenant.id, "name": tenant.name, "api_key": tenant.api_key}, status=201
    )


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/v1/tenants", create_tenant)
