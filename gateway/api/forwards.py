"""``/v1/credentials/{id}/forwards``: copy each message reaching a credential to a person."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints

from ..services.forwards import ForwardInfo
from .base import SERVICES, iso, json_body, object_id, tenant_of


class ForwardIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    channel: Literal["email", "sms"]
    to: Annotated[str, StringConstraints(min_length=1, max_length=320)]


def forward_json(info: ForwardInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "credential_id": info.credential_id,
        "channel": info.channel,
        "to": info.to,
        "created_at": iso(info.created_at),
        "last_status": info.last_status,
        "last_error": info.last_error,
        "last_attempt_at": iso(info.last_attempt_at),
        "pending": info.pending,
    }


async def create_forward(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    cred_id = object_id(request)
    body = await json_body(request, ForwardIn)
    info = await request.app[SERVICES].forward_rules.create(
        tenant, cred_id, channel=body.channel, to=body.to
    )
    return web.json_response(forward_json(info), status=201)


async def list_forwards(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    items = await request.app[SERVICES].forward_rules.list(tenant, object_id(request))
    return web.json_response({"forwards": [forward_json(i) for i in items]})


async def get_forward(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    info = await request.app[SERVICES].forward_rules.get(
        tenant, object_id(request), object_id(request, "forward_id")
    )
    return web.json_response(forward_json(info))


async def delete_forward(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    await request.app[SERVICES].forward_rules.delete(
        tenant, object_id(request), object_id(request, "forward_id")
    )
    return web.Response(status=204)


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/v1/credentials/{id}/forwards", create_forward)
    app.router.add_get("/v1/credentials/{id}/forwards", list_forwards, allow_head=False)
    app.router.add_get("/v1/credentials/{id}/forwards/{forward_id}", get_forward, allow_head=False)
    app.router.add_delete("/v1/credentials/{id}/forwards/{forward_id}", delete_forward)
