"""``/v1/webhooks``: the tenant's endpoints, their signing secrets and their state."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..services.webhooks import WebhookInfo
from .base import SERVICES, iso, json_body, object_id, tenant_of

Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Event = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: Url
    events: Annotated[list[Event], Field(min_length=1, max_length=20)]


def webhook_json(info: WebhookInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "url": info.url,
        "events": info.events,
        "enabled": info.enabled,
        "disabled_reason": info.disabled_reason,
        "pending": info.pending,
        "previous_secret_expires_at": iso(info.previous_secret_until),
        "created_at": iso(info.created_at),
    }


_NO_STORE = {"Cache-Control": "no-store"}


async def create_webhook(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    body = await json_body(request, WebhookIn)
    info, secret = await request.app[SERVICES].webhook_endpoints.create(
        tenant, url=body.url, events=body.events
    )
    return web.json_response(
        {**webhook_json(info), "secret": secret}, status=201, headers=_NO_STORE
    )


async def list_webhooks(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    items = await request.app[SERVICES].webhook_endpoints.list(tenant)
    return web.json_response({"webhooks": [webhook_json(i) for i in items]})


async def get_webhook(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    info = await request.app[SERVICES].webhook_endpoints.get(tenant, object_id(request))
    return web.json_response(webhook_json(info))


async def delete_webhook(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    await request.app[SERVICES].webhook_endpoints.delete(tenant, object_id(request))
    return web.Response(status=204)


async def rotate_secret(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    secret, until = await request.app[SERVICES].webhook_endpoints.rotate(tenant, object_id(request))
    return web.json_response(
        {"secret": secret, "previous_secret_expires_at": iso(until)}, headers=_NO_STORE
    )


async def enable_webhook(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    info = await request.app[SERVICES].webhook_endpoints.enable(tenant, object_id(request))
    return web.json_response(webhook_json(info))


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/webhooks", create_webhook)
    r.add_get("/v1/webhooks", list_webhooks, allow_head=False)
    r.add_get("/v1/webhooks/{id}", get_webhook, allow_head=False)
    r.add_delete("/v1/webhooks/{id}", delete_webhook)
    r.add_post("/v1/webhooks/{id}/rotate", rotate_secret)
    r.add_post("/v1/webhooks/{id}/enable", enable_webhook)
