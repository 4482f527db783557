"""``/v1/keys``: the owner's API keys, each with a role, maybe a credential limit and an expiry."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..roles import Access
from ..services.apikeys import MAX_CREDENTIALS, KeyInfo
from ..timestamps import iso, iso_or_none
from .auth import actor_of, tenant_and_id, tenant_of
from .container import SERVICES
from .inputs import Name, json_body, parse_time
from .openapi import NOT_FOUND, Operation, route
from .replies import json_response

CredentialId = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Name
    role: Literal["owner", "manager", "agent"]
    credential_ids: Annotated[
        list[CredentialId] | None, Field(min_length=1, max_length=MAX_CREDENTIALS)
    ] = None
    expires_at: Annotated[str, StringConstraints(max_length=64)] | None = None


def key_json(info: KeyInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "role": info.role,
        "credential_ids": info.credential_ids,
        "expires_at": iso_or_none(info.expires_at),
        "created_at": iso(info.created_at),
        "last_used_at": iso_or_none(info.last_used_at),
    }


async def create_key(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    body = await json_body(request, KeyIn)
    expires = None if body.expires_at is None else parse_time(body.expires_at, "expires_at")
    new = await request.app[SERVICES].apikeys.create(
        tenant,
        actor_of(request),
        name=body.name,
        role=body.role,
        credential_ids=body.credential_ids,
        expires_at=expires,
    )
    return json_response(
        {
            "id": new.id,
            "name": new.name,
            "role": new.role,
            "credential_ids": new.credential_ids,
            "expires_at": iso_or_none(new.expires_at),
            "key": new.key,
        },
        status=201,
        headers={"Cache-Control": "no-store"},
    )


async def list_keys(request: web.Request) -> web.Response:
    tenant = await tenant_of(request)
    keys = await request.app[SERVICES].apikeys.list(tenant)
    return json_response({"keys": [key_json(k) for k in keys]})


async def revoke_key(request: web.Request) -> web.Response:
    tenant, key_id = await tenant_and_id(request)
    await request.app[SERVICES].apikeys.revoke(tenant, actor_of(request), key_id)
    return web.Response(status=204)


_KEY_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string"},
    "name": {"type": "string"},
    "role": {"enum": ["owner", "manager", "agent"]},
    "credential_ids": {"type": ["array", "null"], "items": {"type": "string"}},
    "expires_at": {"type": ["string", "null"], "format": "date-time"},
}
NEW_KEY = {
    "type": "object",
    "required": ["id", "name", "role", "credential_ids", "expires_at", "key"],
    "properties": _KEY_PROPERTIES | {"key": {"type": "string"}},
}
KEYS = {
    "type": "object",
    "required": ["keys"],
    "properties": {
        "keys": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": _KEY_PROPERTIES
                | {
                    "created_at": {"type": "string", "format": "date-time"},
                    "last_used_at": {"type": ["string", "null"], "format": "date-time"},
                },
            },
        }
    },
}


def setup_routes(app: web.Application) -> None:
    route(
        app,
        "POST",
        "/v1/keys",
        create_key,
        Operation(
            "Create an API key (shown once)",
            {201: ("Created", NEW_KEY)},
            body=KeyIn,
            auth=Access.OWNER,
        ),
    )
    route(
        app,
        "GET",
        "/v1/keys",
        list_keys,
        Operation(
            "The tenant's keys (never the keys themselves)",
            {200: ("Keys", KEYS)},
            auth=Access.OWNER,
        ),
    )
    route(
        app,
        "DELETE",
        "/v1/keys/{id}",
        revoke_key,
        Operation(
            "Revoke a key: 401 for it on every replica within a second",
            {
                204: ("Revoked", None),
                404: NOT_FOUND,
                409: ("The tenant's last owner key", None),
            },
            auth=Access.OWNER,
        ),
    )
