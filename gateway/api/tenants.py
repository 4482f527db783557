"""``/v1/tenants``: the admin creates tenants and receives each one's first key."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from ..roles import Access
from .container import SERVICES
from .inputs import Name, json_body
from .openapi import ERROR, Operation, route
from .replies import json_response


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Name


async def create_tenant(request: web.Request) -> web.Response:
    body = await json_body(request, TenantIn)
    tenant = await request.app[SERVICES].tenants.create(body.name)
    return json_response(
        {"id": tenant.id, "name": tenant.name, "api_key": tenant.api_key}, status=201
    )


TENANT = {
    "type": "object",
    "required": ["id", "name", "api_key"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "api_key": {"type": "string", "description": "the owner key, shown once"},
    },
}


def setup_routes(app: web.Application) -> None:
    route(
        app,
        "POST",
        "/v1/tenants",
        create_tenant,
        Operation(
            "Create a tenant and its API key (shown once)",
            {201: ("Created", TENANT), 403: ("Not the admin key", ERROR)},
            body=TenantIn,
            auth=Access.ADMIN,
        ),
    )
