"""``/v1/credentials/{id}/backup-codes``: a credential's recovery codes, each handed out once."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..roles import Access
from ..services.backup_codes import MAX_CODES, MAX_LENGTH
from .auth import actor_of, credential_of
from .container import SERVICES
from .inputs import json_body
from .openapi import ERROR, NOT_FOUND, Operation, route
from .replies import json_response

Code = Annotated[str, StringConstraints(max_length=MAX_LENGTH * 2)]


class BackupCodesIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    codes: Annotated[list[Code], Field(min_length=1, max_length=MAX_CODES)]


_NO_STORE = {"Cache-Control": "no-store"}


async def put_codes(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    body = await json_body(request, BackupCodesIn)
    count = await request.app[SERVICES].backup_codes.replace(
        tenant, cred_id, body.codes, actor=actor_of(request)
    )
    return json_response({"remaining": count})


async def take_code(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    taken = await request.app[SERVICES].backup_codes.take(tenant, cred_id, actor=actor_of(request))
    return json_response({"code": taken.code, "remaining": taken.remaining}, headers=_NO_STORE)


async def count_codes(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    left = await request.app[SERVICES].backup_codes.remaining(tenant, cred_id)
    return json_response({"remaining": left})


REMAINING = {
    "type": "object",
    "required": ["remaining"],
    "properties": {"remaining": {"type": "integer", "minimum": 0}},
}


def setup_routes(app: web.Application) -> None:
    path = "/v1/credentials/{id}/backup-codes"
    route(
        app,
        "PUT",
        path,
        put_codes,
        Operation(
            "Replace the credential's backup codes (1-50), stored sealed",
            {200: ("How many are stored", REMAINING), 404: NOT_FOUND},
            body=BackupCodesIn,
            auth=Access.CONFIGURE,
        ),
    )
    route(
        app,
        "GET",
        path,
        count_codes,
        Operation(
            "How many backup codes are left",
            {200: ("Count", REMAINING), 404: NOT_FOUND},
            auth=Access.USE,
        ),
    )
    route(
        app,
        "POST",
        path + "/take",
        take_code,
        Operation(
            "Hand out one backup code, once",
            {
                200: (
                    "A code",
                    {
                        "type": "object",
                        "required": ["code", "remaining"],
                        "properties": {
                            "code": {"type": "string"},
                            "remaining": {"type": "integer"},
                        },
                    },
                ),
                404: NOT_FOUND,
                409: ("None left (no_backup_codes)", ERROR),
            },
            auth=Access.SECRET,
        ),
    )
