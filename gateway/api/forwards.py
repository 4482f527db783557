"""``/v1/credentials/{id}/forwards``: copy each message reaching a credential to a person."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints

from ..roles import Access
from ..services.forwards import ForwardInfo
from ..timestamps import iso, iso_or_none
from .auth import credential_of
from .container import SERVICES
from .inputs import json_body, object_id
from .openapi import ERROR, NOT_FOUND, Operation, listing, route
from .replies import json_response


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
        "last_attempt_at": iso_or_none(info.last_attempt_at),
        "pending": info.pending,
    }


async def create_forward(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    body = await json_body(request, ForwardIn)
    info = await request.app[SERVICES].forward_rules.create(
        tenant, cred_id, channel=body.channel, to=body.to
    )
    return json_response(forward_json(info), status=201)


async def list_forwards(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    items = await request.app[SERVICES].forward_rules.list(tenant, cred_id)
    return json_response({"forwards": [forward_json(i) for i in items]})


async def get_forward(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    info = await request.app[SERVICES].forward_rules.get(
        tenant, cred_id, object_id(request, "forward_id")
    )
    return json_response(forward_json(info))


async def delete_forward(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    await request.app[SERVICES].forward_rules.delete(
        tenant, cred_id, object_id(request, "forward_id")
    )
    return web.Response(status=204)


FORWARD = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "credential_id": {"type": "string"},
        "channel": {"enum": ["email", "sms"]},
        "to": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "last_status": {
            "enum": ["sent", "retrying", "failed", "unknown", None],
            "description": "the last copy's fate; unknown: interrupted while sending, "
            "not sent again",
        },
        "last_error": {"type": ["string", "null"]},
        "last_attempt_at": {"type": ["string", "null"], "format": "date-time"},
        "pending": {"type": "integer", "description": "copies waiting to be sent"},
    },
}


def setup_routes(app: web.Application) -> None:
    route(
        app,
        "POST",
        "/v1/credentials/{id}/forwards",
        create_forward,
        Operation(
            "Copy each message reaching the credential to a person (email or SMS)",
            {201: ("Created", FORWARD), 404: NOT_FOUND, 409: ("10 rules already", ERROR)},
            body=ForwardIn,
            auth=Access.CONFIGURE,
        ),
    )
    route(
        app,
        "GET",
        "/v1/credentials/{id}/forwards",
        list_forwards,
        Operation(
            "The credential's rules, with their last status",
            {200: ("Rules", listing("forwards", FORWARD)), 404: NOT_FOUND},
            auth=Access.USE,
        ),
    )
    route(
        app,
        "GET",
        "/v1/credentials/{id}/forwards/{forward_id}",
        get_forward,
        Operation(
            "One rule",
            {200: ("Found", FORWARD), 404: NOT_FOUND},
            auth=Access.USE,
        ),
    )
    route(
        app,
        "DELETE",
        "/v1/credentials/{id}/forwards/{forward_id}",
        delete_forward,
        Operation(
            "Delete a rule",
            {204: ("Deleted", None), 404: NOT_FOUND},
            auth=Access.CONFIGURE,
        ),
    )
