"""Skyvern's ``totp_url``: set per credential, and the route Skyvern polls.

``PUT /v1/credentials/{id}/skyvern`` ``{"api_key"}`` gives the credential a
``totp_url`` (shown once); ``POST /skyvern/totp/{token}`` is Skyvern's poll,
answered as Skyvern expects (see ``services.skyvern`` for the protocol).
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints

from ..roles import Access
from .auth import actor_of, credential_of
from .container import SERVICES
from .inputs import json_body, read_capped
from .openapi import ERROR, NOT_FOUND, Operation, route
from .replies import json_response

#: Skyvern's body is a few ids; anything much larger is not Skyvern.
MAX_BODY = 4096

_NO_STORE = {"Cache-Control": "no-store"}


class SkyvernIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    #: The Skyvern organisation's API key: Skyvern signs its polls with it.
    api_key: Annotated[str, StringConstraints(min_length=1, max_length=500)]


async def put_endpoint(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    body = await json_body(request, SkyvernIn)
    endpoint = await request.app[SERVICES].skyvern.configure(
        tenant, cred_id, body.api_key, actor=actor_of(request)
    )
    return json_response(
        {"credential_id": endpoint.credential_id, "totp_url": endpoint.totp_url},
        headers=_NO_STORE,
    )


async def delete_endpoint(request: web.Request) -> web.Response:
    tenant, cred_id = await credential_of(request)
    await request.app[SERVICES].skyvern.remove(tenant, cred_id, actor=actor_of(request))
    return web.Response(status=204)


async def poll(request: web.Request) -> web.Response:
    body = await read_capped(request, MAX_BODY)
    code = await request.app[SERVICES].skyvern.poll(
        request.match_info["token"], body, request.headers.get("x-skyvern-signature")
    )
    return json_response({"verification_code": code}, headers=_NO_STORE)


def setup_routes(app: web.Application) -> None:
    path = "/v1/credentials/{id}/skyvern"
    endpoint = {
        "type": "object",
        "required": ["credential_id", "totp_url"],
        "properties": {
            "credential_id": {"type": "string"},
            "totp_url": {"type": "string", "format": "uri"},
        },
    }
    route(
        app,
        "PUT",
        path,
        put_endpoint,
        Operation(
            "Give the credential a Skyvern totp_url (a new one each time), checked with "
            "the Skyvern API key",
            {200: ("The totp_url, shown once", endpoint), 404: NOT_FOUND},
            body=SkyvernIn,
            auth=Access.CONFIGURE,
        ),
    )
    route(
        app,
        "DELETE",
        path,
        delete_endpoint,
        Operation(
            "Remove the credential's Skyvern totp_url",
            {204: ("Removed", None), 404: NOT_FOUND},
            auth=Access.CONFIGURE,
        ),
    )
    route(
        app,
        "POST",
        "/skyvern/totp/{token}",
        poll,
        Operation(
            "Skyvern's poll of a totp_url (signed with x-skyvern-signature): the code, a "
            "sign-in link, or an empty verification_code while none has come",
            {
                200: (
                    "The answer Skyvern reads",
                    {
                        "type": "object",
                        "required": ["verification_code"],
                        "properties": {"verification_code": {"type": "string"}},
                    },
                ),
                400: ("Not Skyvern's body", ERROR),
                401: ("The signature does not match (bad_signature)", ERROR),
                404: NOT_FOUND,
                413: ("Too large", ERROR),
            },
            auth=None,
        ),
    )
