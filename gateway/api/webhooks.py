"""``/v1/webhooks``: the tenant's endpoints, their signing secrets and their state."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..events import NAMES
from ..roles import Access
from ..services.webhooks import WebhookInfo
from ..timestamps import iso, iso_or_none
from .auth import tenant_and_id, tenant_of
from .container import SERVICES
from .inputs import json_body
from .openapi import NOT_FOUND, Operation, listing, route
from .replies import json_response

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
        "previous_secret_expires_at": iso_or_none(info.previous_secret_until),
        "created_at": iso(info.created_at),
    }


_NO_STORE = {"Cache-Control": "no-store"}


async def create_webhook(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    body = await json_body(request, WebhookIn)
    info, secret = await request.app[SERVICES].webhook_endpoints.create(
        tenant, url=body.url, events=body.events
    )
    return json_response({**webhook_json(info), "secret": secret}, status=201, headers=_NO_STORE)


async def list_webhooks(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    items = await request.app[SERVICES].webhook_endpoints.list(tenant)
    return json_response({"webhooks": [webhook_json(i) for i in items]})


async def get_webhook(request: web.Request) -> web.Response:
    tenant, webhook_id = await tenant_and_id(request)
    info = await request.app[SERVICES].webhook_endpoints.get(tenant, webhook_id)
    return json_response(webhook_json(info))


async def delete_webhook(request: web.Request) -> web.Response:
    tenant, webhook_id = await tenant_and_id(request)
    await request.app[SERVICES].webhook_endpoints.delete(tenant, webhook_id)
    return web.Response(status=204)


async def rotate_secret(request: web.Request) -> web.Response:
    tenant, webhook_id = await tenant_and_id(request)
    secret, until = await request.app[SERVICES].webhook_endpoints.rotate(tenant, webhook_id)
    return json_response(
        {"secret": secret, "previous_secret_expires_at": iso(until)}, headers=_NO_STORE
    )


async def enable_webhook(request: web.Request) -> web.Response:
    tenant, webhook_id = await tenant_and_id(request)
    info = await request.app[SERVICES].webhook_endpoints.enable(tenant, webhook_id)
    return json_response(webhook_json(info))


WEBHOOK = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "url": {"type": "string", "format": "uri"},
        "events": {
            "type": "array",
            "items": {"enum": list(NAMES)},
        },
        "enabled": {"type": "boolean"},
        "disabled_reason": {"type": ["string", "null"]},
        "pending": {"type": "integer", "description": "deliveries queued, not yet delivered"},
        "previous_secret_expires_at": {"type": ["string", "null"], "format": "date-time"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
_SECRET = {"type": "string", "pattern": "^whsec_"}


def setup_routes(app: web.Application) -> None:
    route(
        app,
        "POST",
        "/v1/webhooks",
        create_webhook,
        Operation(
            "Register an endpoint; deliveries are signed as Standard Webhooks says "
            "with the returned secret (shown once)",
            {201: ("Created", {"allOf": [WEBHOOK, {"properties": {"secret": _SECRET}}]})},
            body=WebhookIn,
            auth=Access.CONFIGURE,
        ),
    )
    route(
        app,
        "GET",
        "/v1/webhooks",
        list_webhooks,
        Operation(
            "List endpoints (no secrets)",
            {200: ("Endpoints", listing("webhooks", WEBHOOK))},
            auth=Access.USE,
        ),
    )
    route(
        app,
        "GET",
        "/v1/webhooks/{id}",
        get_webhook,
        Operation(
            "One endpoint",
            {200: ("Found", WEBHOOK), 404: NOT_FOUND},
            auth=Access.USE,
        ),
    )
    route(
        app,
        "DELETE",
        "/v1/webhooks/{id}",
        delete_webhook,
        Operation(
            "Delete an endpoint and what is queued for it",
            {204: ("Deleted", None), 404: NOT_FOUND},
            auth=Access.CONFIGURE,
        ),
    )
    rotated = {
        "type": "object",
        "properties": {
            "secret": _SECRET,
            "previous_secret_expires_at": {"type": "string", "format": "date-time"},
        },
    }
    route(
        app,
        "POST",
        "/v1/webhooks/{id}/rotate",
        rotate_secret,
        Operation(
            "A new signing secret; the old one also signs for 24 hours",
            {200: ("Rotated", rotated), 404: NOT_FOUND},
            auth=Access.CONFIGURE,
        ),
    )
    route(
        app,
        "POST",
        "/v1/webhooks/{id}/enable",
        enable_webhook,
        Operation(
            "Turn an endpoint back on after a 410 Gone disabled it",
            {200: ("Enabled", WEBHOOK), 404: NOT_FOUND},
            auth=Access.CONFIGURE,
        ),
    )
